/* stub */
typedef int stub_pgsmb_archive_c;
