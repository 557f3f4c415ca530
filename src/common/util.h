/* The daemon side's name for the helpers plugins get too: see <pgina/util.h>. */
#pragma once

#include <pgina/util.h>
