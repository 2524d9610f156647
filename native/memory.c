/*
 * Giving memory back once the service is ready. Start-up leaves two kinds of memory that podsock no
 * longer uses and that the kernel cannot take back by itself while they stay mapped:
 *
 * - malloc's free lists: memory freed by Node and the addon stays in glibc's arenas until
 *   malloc_trim(3) returns the free pages (MADV_DONTNEED on whole free pages of every arena).
 * - the pages of node's executable and libraries that start-up read (V8's snapshot, the code that
 *   parsed and compiled podsock) stay mapped into this process, counted in its RSS and PSS. For a
 *   private file mapping that was never written, madvise(MADV_DONTNEED) only drops this process's
 *   page-table entries: the pages stay in the page cache, shared, and a later access maps them again
 *   from the file (madvise(2): "repopulating the memory contents from the up-to-date contents of the
 *   underlying mapped file"). Which ranges qualify is decided in TypeScript from /proc/self/smaps
 *   (src/memory/file-pages.ts: read-only, file-backed, no anonymous (copy-on-write) page); here it is
 *   only checked that the range is page-aligned.
 */
#include <errno.h>
#include <malloc.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memory.h"
#include "internal.h"

/* mallocTrim() -> boolean: malloc_trim(0); true when memory was returned. */
static napi_value js_malloc_trim(napi_env env, napi_callback_info info) {
  napi_value v;
  napi_get_boolean(env, malloc_trim(0) == 1, &v);
  return v;
}

/* dropFilePages(start: bigint, length: bigint) -> void: madvise(MADV_DONTNEED) on a page-aligned range. */
static napi_value js_drop_file_pages(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  uint64_t start = 0, length = 0;
  bool lossless = false;
  long page = sysconf(_SC_PAGESIZE);
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_bigint_uint64(env, a[0], &start, &lossless) != napi_ok ||
      !lossless || napi_get_value_bigint_uint64(env, a[1], &length, &lossless) != napi_ok || !lossless || page <= 0 || start % (uint64_t)page != 0 ||
      length % (uint64_t)page != 0 || length == 0 || start + length < start) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: dropFilePages(start, length) takes a non-empty page-aligned range as bigints");
    return NULL;
  }
  if (madvise((void *)(uintptr_t)start, (size_t)length, MADV_DONTNEED) != 0) {
    throw_errno(env, "madvise(MADV_DONTNEED)", errno);
    return NULL;
  }
  return NULL;
}

napi_status podsock_memory_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"mallocTrim", NULL, js_malloc_trim, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dropFilePages", NULL, js_drop_file_pages, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
