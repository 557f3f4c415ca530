/* stub */
typedef int stub_host_chain;
