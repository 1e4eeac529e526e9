/* timer.h: monotonic wall-clock time and process CPU time, in seconds. */
#ifndef SLM_CORE_TIMER_H
#define SLM_CORE_TIMER_H

double slm_time_now(void);     /* monotonic seconds, for durations */
double slm_time_cpu(void);     /* CPU seconds used by this process, all threads */
long slm_peak_rss_kb(void);    /* peak resident set size of this process, in KiB */

#endif
