# make run   : install what is missing, build, start `proxer up`
# make test  : install what is missing, build, run every test (unit, fuzz replay, integration)
# make test-asan : the same tests built with AddressSanitizer + UndefinedBehaviorSanitizer
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_GEN := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
PROXER_ARGS ?=

.PHONY: all deps build run test asan test-asan bench format clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja $(BUILD)/Makefile:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/$(if $(CMAKE_GEN),build.ninja,Makefile)
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/src/app/proxer up $(PROXER_ARGS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) --timeout 600

asan: deps
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DPROXER_SANITIZE=ON -DPROXER_BENCH=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS)

test-asan: asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) --timeout 900

bench: build
	bash scripts/install-deps.sh --bench
	bash bench/run.sh
	bash bench/memory.sh
	bash bench/cost.sh
	bash bench/scale.sh
	bash bench/carriers.sh
	bash bench/proxy.sh
	bash bench/instructions.sh

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
