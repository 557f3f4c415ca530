/* stub */
typedef int stub_pgsmb_store_smb_c;
