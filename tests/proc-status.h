/* SPDX-License-Identifier: MIT */
/* What the tests and benchmarks read of slmd in /proc: a status field, its open descriptors. */
#pragma once

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* The number after @key (e.g. "VmRSS:", in kB) in /proc/PID/status; 0 where there is none. */
static inline unsigned long proc_status_value(pid_t pid, const char *key)
{
        char path[64], line[256];
        unsigned long v = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        f = fopen(path, "r");
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, key, strlen(key)) == 0)
                        v = strtoul(line + strlen(key), NULL, 10);
        if (f)
                fclose(f);
        return v;
}

/* How many descriptors @pid has open. */
static inline unsigned proc_fd_count(pid_t pid)
{
        char path[64];
        unsigned n = 0;
        DIR *d;
        struct dirent *e;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        d = opendir(path);
        while (d && (e = readdir(d)))
                n += e->d_name[0] != '.';
        if (d)
                closedir(d);
        return n;
}
