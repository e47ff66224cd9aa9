# Warnings are errors for our own code; third-party headers come in as SYSTEM.
function(proxer_warnings target)
  # -Wmismatched-new-delete: GCC 12 false positive on Asio's awaitable frame allocator
  # (operator new/delete pairs of awaitable_frame_base), seen under -O2.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror
    -Wno-missing-field-initializers -Wno-mismatched-new-delete)
endfunction()

# proxer_library(NAME DEPS...): one folder = one static library, sources globbed.
function(proxer_library name)
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  add_library(proxer_${name} STATIC ${srcs})
  target_include_directories(proxer_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(proxer_${name} PUBLIC ${ARGN})
  proxer_warnings(proxer_${name})
endfunction()
