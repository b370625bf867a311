/*
 * bench_util.h -- what every bench of ifpp-station shares: a clock, the peak resident set, and the
 * one machine line per figure that bench/run.sh collects into the table (format: ../BRIEF, issue 16.5):
 *     BENCH<TAB>name<TAB>value<TAB>unit<TAB>baseline-name<TAB>baseline-value<TAB>ratio<TAB>peak-rss-KiB
 */
#ifndef IFPP_BENCH_UTIL_H
#define IFPP_BENCH_UTIL_H

/* Monotonic seconds. */
double bench_now_s(void);

/* This process's peak resident set in KiB (VmHWM), -1 if unknown. */
long bench_peak_rss_kib(void);

/* The largest peak resident set of any waited-for child in KiB (getrusage), -1 if unknown. */
long bench_children_peak_rss_kib(void);

/*
 * Prints one BENCH line; base_name NULL: no baseline ("-" for it, its value and the ratio);
 * ratio = value / base_value; rss_kib < 0: "-".
 */
void bench_line(const char *name, double value, const char *unit, const char *base_name, double base_value,
                long rss_kib);

#endif
