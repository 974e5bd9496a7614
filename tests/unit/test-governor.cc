// SPDX-License-Identifier: MIT
// The budget governor over a table of readings (cool, hot, critical; AC and battery levels;
// memory pressure; power profiles), and the readers over a fake sysfs/procfs tree.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <sys/stat.h>

#include "governor.h"
#include "readers.h"

namespace
{

SlmReadings cool()
{
        SlmReadings r = {};
        r.n_zones = 2;
        r.zone[0] = { 45.0, 80.0, 100.0 };
        r.zone[1] = { 50.0, NAN, NAN }; // no trips: the policy's hot_c / critical_c
        r.have_battery = true;
        r.battery_pct = 80;
        r.have_psi = true;
        r.mem_total_kb = 8 << 20;
        r.mem_available_kb = 4 << 20;
        return r;
}

struct Row {
        const char *name;
        void (*change)(SlmReadings &);
        // expected
        SlmThermal thermal;
        int threads;
        bool normal, background, refused, sessions, drop, unload;
        double pace;
        const char *reason;
};

} // namespace

TEST(Governor, DecisionTable)
{
        SlmPolicy p;
        slm_policy_defaults(&p);
        p.max_threads = 4;
        const Row rows[] = {
                { "cool on AC", [](SlmReadings &) {}, SLM_THERMAL_COOL, 4, true, true, false, true,
                  false, false, 0.0, "cool" },
                { "passive trip crossed", [](SlmReadings &r) { r.zone[0].temp_c = 81.0; },
                  SLM_THERMAL_HOT, 2, true, false, false, true, false, false, 5.0,
                  "hot: thermal zone 0 at or above 80.0 °C" },
                { "zone without trips above hot_c", [](SlmReadings &r) { r.zone[1].temp_c = 85.0; },
                  SLM_THERMAL_HOT, 2, true, false, false, true, false, false, 5.0,
                  "hot: thermal zone 1 at or above 80.0 °C" },
                { "near the critical trip", [](SlmReadings &r) { r.zone[0].temp_c = 91.0; },
                  SLM_THERMAL_CRITICAL, 1, false, false, false, true, false, false, 0.0,
                  "critical: thermal zone 0 at or above 90.0 °C" },
                { "battery high, discharging", [](SlmReadings &r) { r.on_battery = true; },
                  SLM_THERMAL_COOL, 4, true, true, false, true, false, false, 0.0, "cool" },
                { "battery low, discharging",
                  [](SlmReadings &r) {
                          r.on_battery = true;
                          r.battery_pct = 15;
                  },
                  SLM_THERMAL_COOL, 4, true, false, true, true, false, false, 0.0,
                  "on battery below 20 %" },
                { "battery low, charging", [](SlmReadings &r) { r.battery_pct = 15; },
                  SLM_THERMAL_COOL, 4, true, true, false, true, false, false, 0.0, "cool" },
                { "power-saver profile",
                  [](SlmReadings &r) { r.profile = SLM_PROFILE_POWER_SAVER; }, SLM_THERMAL_COOL, 2,
                  true, true, false, true, false, false, 0.0, "power-saver profile" },
                { "performance profile",
                  [](SlmReadings &r) { r.profile = SLM_PROFILE_PERFORMANCE; }, SLM_THERMAL_COOL, 4,
                  true, true, false, true, false, false, 0.0, "cool" },
                { "some memory pressure", [](SlmReadings &r) { r.psi_some_avg10 = 12.0; },
                  SLM_THERMAL_COOL, 4, true, true, false, true, true, false, 0.0,
                  "memory pressure: idle KV caches dropped" },
                { "full memory pressure",
                  [](SlmReadings &r) {
                          r.psi_some_avg10 = 40.0;
                          r.psi_full_avg10 = 15.0;
                  },
                  SLM_THERMAL_COOL, 4, true, true, false, false, true, true, 0.0,
                  "memory pressure: model unloaded" },
                { "little memory left, no PSI",
                  [](SlmReadings &r) {
                          r.have_psi = false;
                          r.mem_available_kb = 100 << 10;
                  },
                  SLM_THERMAL_COOL, 4, true, true, false, false, true, true, 0.0,
                  "memory pressure: model unloaded" },
                { "hot, low battery and pressure at once",
                  [](SlmReadings &r) {
                          r.zone[0].temp_c = 82.0;
                          r.on_battery = true;
                          r.battery_pct = 5;
                          r.psi_some_avg10 = 11.0;
                  },
                  SLM_THERMAL_HOT, 2, true, false, true, true, true, false, 5.0,
                  "hot: thermal zone 0 at or above 80.0 °C; on battery below 20 %; memory "
                  "pressure: idle KV caches dropped" },
        };
        for (const Row &row : rows) {
                SlmReadings r = cool();
                row.change(r);
                SlmBudget b;
                slm_governor_decide(&r, &p, &b);
                EXPECT_EQ(b.thermal, row.thermal) << row.name;
                EXPECT_EQ(b.threads, row.threads) << row.name;
                EXPECT_EQ(b.normal_allowed, row.normal) << row.name;
                EXPECT_EQ(b.background_allowed, row.background) << row.name;
                EXPECT_EQ(b.background_refused, row.refused) << row.name;
                EXPECT_EQ(b.accept_sessions, row.sessions) << row.name;
                EXPECT_EQ(b.drop_idle_kv, row.drop) << row.name;
                EXPECT_EQ(b.unload, row.unload) << row.name;
                EXPECT_EQ(b.pace_tps, row.pace) << row.name;
                EXPECT_STREQ(b.reason, row.reason) << row.name;
                SlmBudget again;
                slm_governor_decide(&r, &p, &again);
                EXPECT_TRUE(slm_budget_equal(&b, &again)) << row.name; // a pure function
        }
}

TEST(Governor, PerClassPaces)
{
        SlmPolicy p;
        slm_policy_defaults(&p);
        p.normal_pace_tps = 20.0;
        p.background_pace_tps = 2.0;
        SlmReadings r = cool();
        SlmBudget b;
        slm_governor_decide(&r, &p, &b);
        EXPECT_EQ(b.pace_tps, 20.0);
        EXPECT_EQ(b.background_pace_tps, 2.0);
        EXPECT_STREQ(b.reason, "cool");
        r.zone[0].temp_c = 85.0; // hot: the slower of the two normal paces
        slm_governor_decide(&r, &p, &b);
        EXPECT_EQ(b.pace_tps, 5.0);
        p.normal_pace_tps = 3.0;
        slm_governor_decide(&r, &p, &b);
        EXPECT_EQ(b.pace_tps, 3.0);
}

namespace
{

void put(const std::string &path, const std::string &text)
{
        std::string dir = path.substr(0, path.rfind('/'));
        std::string cmd = "mkdir -p '" + dir + "'";
        ASSERT_EQ(system(cmd.c_str()), 0);
        std::ofstream(path) << text;
}

} // namespace

TEST(Readers, FakeSysfsAndProcfs)
{
        char tmpl[] = "/tmp/slm-governor-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        std::string root = tmpl, sys = root + "/sys", proc = root + "/proc";
        put(sys + "/class/thermal/thermal_zone0/temp", "45000\n");
        put(sys + "/class/thermal/thermal_zone0/trip_point_0_type", "critical\n");
        put(sys + "/class/thermal/thermal_zone0/trip_point_0_temp", "105000\n");
        put(sys + "/class/thermal/thermal_zone0/trip_point_1_type", "passive\n");
        put(sys + "/class/thermal/thermal_zone0/trip_point_1_temp", "85000\n");
        put(sys + "/class/thermal/thermal_zone1/temp", "61500\n");
        put(sys + "/class/thermal/cooling_device0/cur_state", "0\n"); // not a zone
        put(sys + "/class/power_supply/AC/type", "Mains\n");
        put(sys + "/class/power_supply/AC/online", "0\n");
        put(sys + "/class/power_supply/BAT0/type", "Battery\n");
        put(sys + "/class/power_supply/BAT0/capacity", "17\n");
        put(sys + "/class/power_supply/BAT0/status", "Discharging\n");
        put(proc + "/pressure/memory", "some avg10=12.50 avg60=3.00 avg300=1.00 total=100\n"
                                       "full avg10=0.75 avg60=0.10 avg300=0.00 total=10\n");
        put(proc + "/meminfo", "MemTotal:       16000000 kB\nMemFree:  1000 kB\n"
                               "MemAvailable:    3000000 kB\n");

        SlmReadings r = {};
        r.profile = SLM_PROFILE_BALANCED;
        slm_read_device(sys.c_str(), proc.c_str(), &r);
        ASSERT_EQ(r.n_zones, 2);
        // readdir order is not sorted: find each zone by its temperature
        int z0 = r.zone[0].temp_c == 45.0 ? 0 : 1, z1 = 1 - z0;
        EXPECT_EQ(r.zone[z0].temp_c, 45.0);
        EXPECT_EQ(r.zone[z0].passive_c, 85.0);
        EXPECT_EQ(r.zone[z0].critical_c, 105.0);
        EXPECT_EQ(r.zone[z1].temp_c, 61.5);
        EXPECT_TRUE(std::isnan(r.zone[z1].passive_c));
        EXPECT_TRUE(r.have_battery);
        EXPECT_TRUE(r.on_battery);
        EXPECT_EQ(r.battery_pct, 17);
        EXPECT_TRUE(r.have_psi);
        EXPECT_DOUBLE_EQ(r.psi_some_avg10, 12.5);
        EXPECT_DOUBLE_EQ(r.psi_full_avg10, 0.75);
        EXPECT_EQ(r.mem_total_kb, 16000000u);
        EXPECT_EQ(r.mem_available_kb, 3000000u);
        EXPECT_EQ(r.profile, SLM_PROFILE_BALANCED); // kept: it comes from D-Bus

        // plugging AC in ends "on battery"; an empty tree reads as nothing known
        put(sys + "/class/power_supply/AC/online", "1\n");
        slm_read_device(sys.c_str(), proc.c_str(), &r);
        EXPECT_FALSE(r.on_battery);
        slm_read_device((root + "/none").c_str(), (root + "/none").c_str(), &r);
        EXPECT_EQ(r.n_zones, 0);
        EXPECT_FALSE(r.have_battery);
        EXPECT_FALSE(r.have_psi);
        EXPECT_EQ(r.mem_total_kb, 0u);
        std::string rm = "rm -rf '" + root + "'";
        EXPECT_EQ(system(rm.c_str()), 0);
}
