#!/bin/bash
# Review 2, case C of test-pgsmb-review2-race.sh (its own run: a fresh sandbox): a file a
# lingering process saves into a directory the catch-up removes, during the catch-up, stays.
CASE=C exec bash "$(dirname "$0")/test-pgsmb-review2-race.sh"
