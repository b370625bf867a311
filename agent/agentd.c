/*
 * agentd.c -- ifpp-agent: the station's one long-lived process (docs/agent.md). It owns the store
 * and every fixture slot (slots.c: a thread per slot), serves the MES socket (mes.c) in its main
 * thread, and talks to systemd: READY and STATUS (slots busy, stock), WATCHDOG, RELOADING on
 * SIGHUP (a new station.conf.d applied without dropping running sessions, each change logged),
 * STOPPING on SIGTERM (no new work; running sessions end within timeouts.shutdown_ms).
 *
 *   ifpp-agent [-c DIR|FILE] [--check]
 */
#define _GNU_SOURCE /* signalfd */
#include "agentd.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "alog.h"
#include "config.h"
#include "mes.h"
#include "slots.h"
#include "station.h"

#define AGENTD_DEFAULT_CONFIG "/etc/ifpp-station/station.conf.d"

static long agentd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* STATUS= for systemctl status: slots busy and in fault, the vault's stock. */
static void agentd_status(slots *sl, store *ro, const char *phase)
{
    size_t busy, fault, total, avail = 0;
    if (!ro || store_count_bpps(ro, BPP_AVAILABLE, &avail) != IFPP_OK)
        avail = 0;
    sd_notifyf(0, "STATUS=%s: %zu of %zu slots busy, %zu in fault; %zu BPP(s) in stock", phase,
               (slots_counts(sl, &busy, &fault, &total), busy), total, fault, avail);
}

static void agentd_change(void *arg, const char *text)
{
    (void)arg;
    alog(LOG_LVL_INFO, NULL, "reload: %s", text);
}

/* SIGHUP: the new configuration, checked whole before any of it applies. */
static void agentd_reload(const char *path, agent_config *cur, slots *sl, mes *m)
{
    agent_config *next = malloc(sizeof *next);
    char why[1024] = "";
    sd_notify(0, "RELOADING=1");
    if (!next) {
        alog(LOG_LVL_ERROR, NULL, "reload: out of memory; the running configuration stays");
    } else if (config_load(path, next, why, sizeof why) != IFPP_OK) {
        alog(LOG_LVL_ERROR, NULL, "reload refused, the running configuration stays: %s", why);
        mes_station_state(m, "reload-refused", why);
    } else {
        size_t n = config_diff(cur, next, agentd_change, NULL);
        if (slots_reload(sl, next, why, sizeof why) != IFPP_OK) {
            alog(LOG_LVL_ERROR, NULL, "reload refused, the running configuration stays: %s", why);
            mes_station_state(m, "reload-refused", why);
        } else {
            mes_reload(m, next);
            *cur = *next;
            alog(LOG_LVL_INFO, NULL, "reloaded %s: %zu change(s)", path, n);
            mes_station_state(m, "reloaded", n ? "configuration changed" : "no change");
        }
    }
    free(next);
    sd_notify(0, "READY=1");
}

static int agentd_usage(FILE *f, int rc)
{
    fprintf(f, "usage: ifpp-agent [-c|--config DIR-or-FILE (default " AGENTD_DEFAULT_CONFIG ")] [--check]\n"
               "  --check   validate the configuration, print the merged result and exit (0 valid, 2 not)\n");
    return rc;
}

int agentd_main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    const char *path = AGENTD_DEFAULT_CONFIG;
    bool check = false;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'h':
            return agentd_usage(stdout, 0);
        case 'V':
            printf("ifpp-agent %s\n", IFPP_VERSION);
            return 0;
        default:
            return agentd_usage(stderr, STATION_EXIT_USAGE);
        }
    }
    if (optind != argc)
        return agentd_usage(stderr, STATION_EXIT_USAGE);

    alog_init();
    agent_config *cfg = malloc(sizeof *cfg);
    char why[1024] = "";
    if (!cfg)
        return STATION_EXIT_FAILURE;
    if (config_load(path, cfg, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "ifpp-agent: configuration: %s\n", why);
        free(cfg);
        return STATION_EXIT_USAGE;
    }
    if (check) {
        config_print(cfg, stdout);
        free(cfg);
        return 0;
    }

    int rc = STATION_EXIT_FAILURE;
    mes *m = NULL;
    slots *sl = NULL;
    store *ro = NULL;
    station *probe = NULL;
    int sfd = -1, lockfd = -1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    /* blocked before any thread starts, so that every thread inherits the mask and only signalfd sees them */
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 || (sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        fprintf(stderr, "ifpp-agent: signals: %s\n", strerror(errno));
        goto out;
    }
    /* The store is this daemon's while it runs: ifppctl tests the claim and will not write behind its back;
     * a second daemon on the same store stops here, before it opens anything. */
    if (station_daemon_claim(cfg->store_path, cfg->mes_path, &lockfd, why, sizeof why) != IFPP_OK) {
        alog(LOG_LVL_ERROR, NULL, "%s", why);
        goto out;
    }
    /* The station must open as configured before anything is announced: a wrong key or store fails here. */
    if (slots_station_open(cfg, &probe, why, sizeof why) != IFPP_OK) {
        alog(LOG_LVL_ERROR, NULL, "cannot open the station: %s", why);
        goto out;
    }
    station_close(probe);
    if (store_open_readonly(cfg->store_path, &ro, why, sizeof why) != IFPP_OK) {
        alog(LOG_LVL_ERROR, NULL, "store %s: %s", cfg->store_path, why);
        goto out;
    }
    if (mes_open(cfg, &m, why, sizeof why) != IFPP_OK) {
        alog(LOG_LVL_ERROR, NULL, "MES socket: %s", why);
        goto out;
    }
    if (slots_start(cfg, mes_slot_event, m, &sl, why, sizeof why) != IFPP_OK) {
        alog(LOG_LVL_ERROR, NULL, "slots: %s", why);
        goto out;
    }
    mes_attach(m, sl, ro);
    uint64_t wd_usec = 0;
    long wd_ms = sd_watchdog_enabled(0, &wd_usec) > 0 ? (long)(wd_usec / 2000) : 0;
    alog(LOG_LVL_INFO, NULL, "ready: station %s, %zu slot(s), store %s, MES socket %s (pid %ld)", cfg->station_id,
         cfg->n_slots, cfg->store_path, cfg->mes_path, (long)getpid());
    sd_notify(0, "READY=1");
    agentd_status(sl, ro, "running");
    mes_station_state(m, "running", NULL);

    long last_status = agentd_now_ms(), last_wd = last_status, stop_at = 0;
    bool stopping = false;
    for (;;) {
        bool sig = false;
        int timeout = 1000;
        if (wd_ms > 0 && wd_ms < timeout)
            timeout = (int)wd_ms;
        if (mes_poll(m, stopping ? 100 : timeout, sfd, &sig) != IFPP_OK)
            alog(LOG_LVL_WARN, NULL, "poll: %s", strerror(errno));
        struct signalfd_siginfo si;
        while (sig && read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
            if (si.ssi_signo == SIGHUP && !stopping) {
                alog(LOG_LVL_INFO, NULL, "SIGHUP from pid %ld: reloading %s", (long)si.ssi_pid, path);
                agentd_reload(path, cfg, sl, m);
            } else if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && !stopping) {
                stopping = true;
                stop_at = agentd_now_ms() + cfg->shutdown_ms;
                sd_notify(0, "STOPPING=1");
                alog(LOG_LVL_INFO, NULL, "signal %d from pid %ld: no new work; running sessions may take up to %ld ms",
                     (int)si.ssi_signo, (long)si.ssi_pid, cfg->shutdown_ms);
                mes_station_state(m, "stopping", NULL);
            }
        }
        long now = agentd_now_ms();
        if (wd_ms > 0 && now - last_wd >= wd_ms) {
            sd_notify(0, "WATCHDOG=1");
            last_wd = now;
        }
        if (now - last_status >= 1000) {
            agentd_status(sl, ro, stopping ? "stopping" : "running");
            last_status = now;
        }
        if (stopping) {
            size_t left = slots_drain(sl, 0);
            if (left == 0) {
                rc = 0;
                break;
            }
            if (now >= stop_at) {
                alog(LOG_LVL_ERROR, NULL, "%zu session(s) still running after %ld ms: exiting around them; their "
                     "BPPs stay reserved or in doubt until `ifppctl recover`", left, cfg->shutdown_ms);
                rc = STATION_EXIT_FAILURE;
                break;
            }
        }
    }
    alog(LOG_LVL_INFO, NULL, "stopped");
out:
    if (sl) {
        slots_drain(sl, 0);
        slots_free(sl);
    }
    mes_close(m);
    store_close(ro);
    if (sfd >= 0)
        close(sfd);
    if (lockfd >= 0) /* the claim ends only after every session and connection has */
        close(lockfd);
    free(cfg);
    return rc;
}
