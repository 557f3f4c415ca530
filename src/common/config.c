/* stub */
typedef int stub_config;
