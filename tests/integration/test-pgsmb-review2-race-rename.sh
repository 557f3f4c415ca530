#!/bin/bash
# Review 2, case A of test-pgsmb-review2-race.sh (its own run: a fresh sandbox): a lingering
# process writes a file the catch-up replaces, after the catch-up's check and before the
# extraction's rename over it: the write stays ("'docs/f5' changed here during the catch-up"),
# the home is used as it is, and its next logoff keeps both (a conflict copy).
CASE=A exec bash "$(dirname "$0")/test-pgsmb-review2-race.sh"
