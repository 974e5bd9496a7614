/* SPDX-License-Identifier: MIT */
#include "governor.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void slm_policy_defaults(SlmPolicy *p)
{
        *p = (SlmPolicy){
                .max_threads = 4,
                .hot_c = 80.0,
                .critical_c = 95.0,
                .critical_margin_c = 10.0,
                .battery_low_pct = 20,
                .hot_pace_tps = 5.0,
                .pressure_drop = 10.0,
                .pressure_unload = 10.0,
                .min_available_mb = 256,
                .kv_cap_mb = 0,
        };
}

const char *slm_thermal_name(SlmThermal t)
{
        static const char *const names[] = { "cool", "hot", "critical" };
        return (unsigned)t < 3 ? names[t] : "unknown";
}

static void add_reason(SlmBudget *b, const char *fmt, ...)
{
        size_t len = strlen(b->reason);
        va_list ap;

        if (len && len + 2 < sizeof(b->reason)) {
                memcpy(b->reason + len, "; ", 3);
                len += 2;
        }
        va_start(ap, fmt);
        vsnprintf(b->reason + len, sizeof(b->reason) - len, fmt, ap);
        va_end(ap);
}

static int half(int n)
{
        return n / 2 > 1 ? n / 2 : 1;
}

static void thermal(const SlmReadings *r, const SlmPolicy *p, SlmBudget *b)
{
        int worst = -1;
        double worst_trip = 0.0;
        SlmThermal level = SLM_THERMAL_COOL;

        for (int i = 0; i < r->n_zones && i < SLM_MAX_ZONES; i++) {
                double t = r->zone[i].temp_c;
                double hot = isnan(r->zone[i].passive_c) ? p->hot_c : r->zone[i].passive_c;
                double crit = isnan(r->zone[i].critical_c)
                                  ? p->critical_c
                                  : r->zone[i].critical_c - p->critical_margin_c;
                SlmThermal l = t >= crit  ? SLM_THERMAL_CRITICAL
                               : t >= hot ? SLM_THERMAL_HOT
                                          : SLM_THERMAL_COOL;
                if (l > level) {
                        level = l;
                        worst = i;
                        worst_trip = l == SLM_THERMAL_CRITICAL ? crit : hot;
                }
        }
        b->thermal = level;
        if (level == SLM_THERMAL_HOT) {
                b->background_allowed = false;
                if (b->pace_tps == 0 || p->hot_pace_tps < b->pace_tps)
                        b->pace_tps = p->hot_pace_tps;
                b->threads = half(p->max_threads);
                b->max_batch = 16;
                add_reason(b, "hot: thermal zone %d at or above %.1f °C", worst, worst_trip);
        } else if (level == SLM_THERMAL_CRITICAL) {
                b->background_allowed = false;
                b->normal_allowed = false;
                b->threads = 1;
                b->max_batch = 8;
                add_reason(b, "critical: thermal zone %d at or above %.1f °C", worst, worst_trip);
        }
}

static void power(const SlmReadings *r, const SlmPolicy *p, SlmBudget *b)
{
        if (r->profile == SLM_PROFILE_POWER_SAVER) {
                if (b->threads > half(p->max_threads))
                        b->threads = half(p->max_threads);
                add_reason(b, "power-saver profile");
        }
        if (r->have_battery && r->on_battery && r->battery_pct < p->battery_low_pct) {
                b->background_allowed = false;
                b->background_refused = true;
                add_reason(b, "on battery below %d %%", p->battery_low_pct);
        }
}

static void memory(const SlmReadings *r, const SlmPolicy *p, SlmBudget *b)
{
        uint64_t avail_mb = r->mem_available_kb / 1024;
        bool known = r->mem_total_kb > 0;

        if ((r->have_psi && r->psi_full_avg10 >= p->pressure_unload) ||
            (known && avail_mb < p->min_available_mb)) {
                b->unload = true;
                b->drop_idle_kv = true;
                b->accept_sessions = false;
                add_reason(b, "memory pressure: model unloaded");
        } else if ((r->have_psi && r->psi_some_avg10 >= p->pressure_drop) ||
                   (known && avail_mb < 2 * p->min_available_mb)) {
                b->drop_idle_kv = true;
                add_reason(b, "memory pressure: idle KV caches dropped");
        }
}

void slm_governor_decide(const SlmReadings *r, const SlmPolicy *p, SlmBudget *b)
{
        *b = (SlmBudget){
                .thermal = SLM_THERMAL_COOL,
                .threads = p->max_threads > 0 ? p->max_threads : 1,
                .max_batch = 64,
                .normal_allowed = true,
                .background_allowed = true,
                .accept_sessions = true,
                .kv_cap_bytes = p->kv_cap_mb << 20,
                .pace_tps = p->normal_pace_tps,
                .background_pace_tps = p->background_pace_tps,
        };
        thermal(r, p, b);
        power(r, p, b);
        memory(r, p, b);
        if (!b->reason[0])
                snprintf(b->reason, sizeof(b->reason), "cool");
}

bool slm_budget_equal(const SlmBudget *a, const SlmBudget *b)
{
        return a->thermal == b->thermal && a->threads == b->threads &&
               a->max_batch == b->max_batch && a->pace_tps == b->pace_tps &&
               a->background_pace_tps == b->background_pace_tps &&
               a->normal_allowed == b->normal_allowed &&
               a->background_allowed == b->background_allowed &&
               a->background_refused == b->background_refused &&
               a->accept_sessions == b->accept_sessions && a->kv_cap_bytes == b->kv_cap_bytes &&
               a->drop_idle_kv == b->drop_idle_kv && a->unload == b->unload &&
               strcmp(a->reason, b->reason) == 0;
}
