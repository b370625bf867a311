/*
 * log.h -- one line per event to stderr (journald adds the time and unit).
 *
 * Rule for every caller: never pass key material, shared secrets or decrypted
 * data to these functions (SGP.41 GENS09/GENS10). Identifiers (EID, ICCID, serial)
 * are fine; they are what an operator needs to act.
 */
#ifndef IFPP_LOG_H
#define IFPP_LOG_H

typedef enum { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG } log_level;

/* Sets the most verbose level that is still printed (default LOG_LVL_INFO). */
void log_set_level(log_level lvl);

/* Prints "<level>: <module>: <message>" if lvl is enabled. */
void log_msg(log_level lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(mod, ...) log_msg(LOG_LVL_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...)  log_msg(LOG_LVL_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...)  log_msg(LOG_LVL_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...) log_msg(LOG_LVL_DEBUG, mod, __VA_ARGS__)

#endif
