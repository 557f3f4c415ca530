/* stub */
typedef int stub_pginad_cache;
