#!/bin/sh
# SPDX-License-Identifier: MIT
# The XML files of data/ and policy/ against the DTDs Debian ships with polkit and dbus.
# Usage: validate-data.sh SOURCE_DIR
set -eu
src=$1
xmllint --noout --dtdvalid /usr/share/polkit-1/policyconfig-1.dtd "$src/policy/org.slmd.policy"
# busconfig.dtd predates the send_* attributes: well-formedness only here; the integration
# tests run a dbus-daemon that loads this policy
xmllint --noout "$src/policy/org.slmd.Slm1.conf"
xmllint --noout --dtdvalid /usr/share/xml/dbus-1/introspect.dtd "$src/data/org.slmd.Slm1.xml"
# the polkit action the daemon asks for is the one the policy defines
grep -q '"org.slmd.manage-models"' "$src/daemon/slmd-daemon.h"
grep -q 'action id="org.slmd.manage-models"' "$src/policy/org.slmd.policy"
echo "data files valid"
