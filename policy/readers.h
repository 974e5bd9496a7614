/* SPDX-License-Identifier: MIT */
/*
 * Readers of the device's state for the governor, from a sysfs root
 * (normally /sys) and a procfs root (normally /proc): thermal zones and
 * their trip points, power supplies, memory pressure and meminfo. What is
 * missing is left at "unknown"; nothing here fails.
 */
#pragma once

#include "governor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fill @r from the trees (the power profile is left as it is: it comes from D-Bus). */
void slm_read_device(const char *sysfs_root, const char *procfs_root, SlmReadings *r);

#ifdef __cplusplus
}
#endif
