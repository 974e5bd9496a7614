/* SPDX-License-Identifier: MIT */
/*
 * The budget governor: a pure function from readings of the device
 * (thermal zones, power supplies, memory pressure, power profile) and
 * the configured policy to a budget for inference. It decides; slmd acts.
 * The readers in readers.h fill SlmReadings from a sysfs and a procfs
 * root, so tests feed fake trees.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLM_MAX_ZONES 32

typedef enum {
        SLM_THERMAL_COOL,
        SLM_THERMAL_HOT,      /* a passive trip point crossed */
        SLM_THERMAL_CRITICAL, /* near a critical trip point */
} SlmThermal;

typedef enum {
        SLM_PROFILE_UNKNOWN, /* power-profiles-daemon not running */
        SLM_PROFILE_POWER_SAVER,
        SLM_PROFILE_BALANCED,
        SLM_PROFILE_PERFORMANCE,
} SlmProfile;

typedef struct {
        int n_zones;
        struct {
                double temp_c;
                double passive_c;  /* NAN: the zone has no passive trip */
                double critical_c; /* NAN: no critical trip */
        } zone[SLM_MAX_ZONES];
        bool have_battery;
        bool on_battery; /* discharging, no mains power online */
        int battery_pct;
        bool have_psi;
        double psi_some_avg10, psi_full_avg10;   /* % of time stalled on memory */
        uint64_t mem_total_kb, mem_available_kb; /* 0: unknown */
        SlmProfile profile;
} SlmReadings;

typedef struct {
        int max_threads;
        double hot_c;             /* hot where a zone has no passive trip */
        double critical_c;        /* critical where a zone has no critical trip */
        double critical_margin_c; /* critical this far below a critical trip */
        int battery_low_pct;      /* on battery below it: background refused */
        double hot_pace_tps;      /* normal work's pace while hot, tokens/s */
        double normal_pace_tps;   /* per-class caps at all times, tokens/s; 0: none */
        double background_pace_tps;
        double pressure_drop;      /* memory "some" avg10 % from which idle KV caches go */
        double pressure_unload;    /* memory "full" avg10 % from which the model goes */
        uint64_t min_available_mb; /* below it the model goes too */
        uint64_t kv_cap_mb;        /* all sessions' KV caches together; 0: no cap */
} SlmPolicy;

typedef struct {
        SlmThermal thermal;
        int threads;
        int max_batch;              /* prompt tokens per step */
        double pace_tps;            /* normal class cap in tokens/s; 0: unpaced */
        double background_pace_tps; /* background class cap; 0: unpaced */
        bool normal_allowed;        /* else normal work waits */
        bool background_allowed;    /* else background work waits */
        bool background_refused;    /* new background work fails with Throttled */
        bool accept_sessions;
        uint64_t kv_cap_bytes; /* 0: no cap */
        bool drop_idle_kv;
        bool unload;
        char reason[256]; /* why, for people: "cool", or each constraint in force */
} SlmBudget;

void slm_policy_defaults(SlmPolicy *p);
void slm_governor_decide(const SlmReadings *r, const SlmPolicy *p, SlmBudget *ret);
bool slm_budget_equal(const SlmBudget *a, const SlmBudget *b);
const char *slm_thermal_name(SlmThermal t);

#ifdef __cplusplus
}
#endif
