#include "app/cli.h"

#ifdef PROXER_MIMALLOC
#include <mimalloc.h>
#endif

int main(int argc, char** argv) {
#ifdef PROXER_MIMALLOC
  // mimalloc replaces malloc for the whole process by being linked ahead of libc; this call
  // keeps the library referenced, so a linker with --as-needed cannot drop it.
  if (mi_version() <= 0) return 1;
#endif
  return proxer::app::main(argc, argv);
}
