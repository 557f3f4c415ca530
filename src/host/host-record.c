/* stub */
typedef int stub_host_record;
