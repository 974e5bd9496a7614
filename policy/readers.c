/* SPDX-License-Identifier: MIT */
#include "readers.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first line of dir/name, without its newline; false when unreadable. */
static bool read_line(const char *dir, const char *name, char *buf, size_t size)
{
        char path[4096];
        FILE *f;
        bool ok;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "re");
        if (!f)
                return false;
        ok = fgets(buf, (int)size, f) != NULL;
        fclose(f);
        if (ok)
                buf[strcspn(buf, "\n")] = '\0';
        return ok;
}

static bool read_long(const char *dir, const char *name, long *ret)
{
        char buf[64], *end;

        if (!read_line(dir, name, buf, sizeof(buf)))
                return false;
        *ret = strtol(buf, &end, 10);
        return end != buf;
}

static void read_zone(const char *dir, SlmReadings *r)
{
        long v;

        if (r->n_zones >= SLM_MAX_ZONES || !read_long(dir, "temp", &v))
                return;
        int z = r->n_zones++;
        r->zone[z].temp_c = (double)v / 1000.0;
        r->zone[z].passive_c = NAN;
        r->zone[z].critical_c = NAN;
        for (int i = 0; i < 32; i++) {
                char type_name[48], temp_name[48], type[32];
                snprintf(type_name, sizeof(type_name), "trip_point_%d_type", i);
                snprintf(temp_name, sizeof(temp_name), "trip_point_%d_temp", i);
                if (!read_line(dir, type_name, type, sizeof(type)) ||
                    !read_long(dir, temp_name, &v))
                        continue;
                /* the lowest trip of each kind counts */
                double t = (double)v / 1000.0;
                if (strcmp(type, "passive") == 0 &&
                    (isnan(r->zone[z].passive_c) || t < r->zone[z].passive_c))
                        r->zone[z].passive_c = t;
                if (strcmp(type, "critical") == 0 &&
                    (isnan(r->zone[z].critical_c) || t < r->zone[z].critical_c))
                        r->zone[z].critical_c = t;
        }
}

static void read_supply(const char *dir, SlmReadings *r, bool *mains_online)
{
        char type[32], status[32];
        long v;

        if (!read_line(dir, "type", type, sizeof(type)))
                return;
        if (strcmp(type, "Mains") == 0 || strcmp(type, "USB") == 0) {
                if (read_long(dir, "online", &v) && v == 1)
                        *mains_online = true;
        } else if (strcmp(type, "Battery") == 0 && !r->have_battery) {
                r->have_battery = true;
                r->battery_pct = read_long(dir, "capacity", &v) ? (int)v : 100;
                r->on_battery = read_line(dir, "status", status, sizeof(status)) &&
                                strcmp(status, "Discharging") == 0;
        }
}

/* Call @fn on every entry of @dir whose name starts with @prefix. */
static void each_entry(const char *dir, const char *prefix,
                       void (*fn)(const char *path, SlmReadings *r, bool *flag), SlmReadings *r,
                       bool *flag)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        char path[4096 + 256 + 2]; /* dir, '/', a name */

        if (!d)
                return;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.' && strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
                        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                        fn(path, r, flag);
                }
        closedir(d);
}

static void zone_entry(const char *path, SlmReadings *r, bool *flag)
{
        (void)flag;
        read_zone(path, r);
}

static void supply_entry(const char *path, SlmReadings *r, bool *mains_online)
{
        read_supply(path, r, mains_online);
}

static void read_memory(const char *procfs, SlmReadings *r)
{
        char path[4096], line[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/pressure/memory", procfs);
        if ((f = fopen(path, "re"))) {
                while (fgets(line, sizeof(line), f)) {
                        double avg10;
                        if (sscanf(line, "some avg10=%lf", &avg10) == 1) {
                                r->psi_some_avg10 = avg10;
                                r->have_psi = true;
                        } else if (sscanf(line, "full avg10=%lf", &avg10) == 1) {
                                r->psi_full_avg10 = avg10;
                        }
                }
                fclose(f);
        }
        snprintf(path, sizeof(path), "%s/meminfo", procfs);
        if ((f = fopen(path, "re"))) {
                while (fgets(line, sizeof(line), f)) {
                        unsigned long long kb;
                        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
                                r->mem_total_kb = kb;
                        else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
                                r->mem_available_kb = kb;
                }
                fclose(f);
        }
}

void slm_read_device(const char *sysfs_root, const char *procfs_root, SlmReadings *r)
{
        SlmProfile profile = r->profile;
        char dir[4096];
        bool mains_online = false;

        memset(r, 0, sizeof(*r));
        r->profile = profile;
        snprintf(dir, sizeof(dir), "%s/class/thermal", sysfs_root);
        each_entry(dir, "thermal_zone", zone_entry, r, NULL);
        snprintf(dir, sizeof(dir), "%s/class/power_supply", sysfs_root);
        each_entry(dir, "", supply_entry, r, &mains_online);
        if (mains_online)
                r->on_battery = false;
        read_memory(procfs_root, r);
}
