#include <pgina/plugin.h>
PGINA_PLUGIN_DEFINE(.name = "testplugin");
