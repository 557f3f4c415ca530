/* The daemon side's name for the program starter plugins get too: see <pgina/spawn.h>. */
#pragma once

#include <pgina/spawn.h>
