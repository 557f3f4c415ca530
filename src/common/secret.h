/* The daemon side's name for the secret type plugins get too: see <pgina/secret.h>. */
#pragma once

#include <pgina/secret.h>
