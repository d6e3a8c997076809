# A thin wrapper over meson: the commands the README starts with.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
PROF_BUILD ?= build-prof
RELEASE_BUILD ?= build-release
FUZZ_SECONDS ?= 60
MESON_OPTS ?=

.PHONY: all deps build release test test-asan test-e2e demo bench bench-stages clean format tidy fuzz test-overload install

all: build

deps:
	@bash deploy/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

# The release build: the same code, optimised with the profile of a training
# run on a generated capture and ../shared (deploy/build-release.sh). What
# `make bench` measures; install it with `make install BUILD=$(RELEASE_BUILD)`.
release: deps
	@bash deploy/build-release.sh $(RELEASE_BUILD)

# Every test (unit, golden, integration); ends with "N passed, N failed".
test: deps build
	@bash tests/run.sh $(BUILD)

# The same tests on a build with AddressSanitizer and UndefinedBehaviorSanitizer.
# No LTO (as for fuzz): with it every link re-generates the instrumented code
# of the whole core. Any sanitizer report aborts the process (exit != 0).
# EXFILWATCH_SANITIZED=1 tells the tests the binary is this build (slower,
# bigger): replay_all_captures runs its sanitizer pass on it, and a test may
# scale a timing bound or skip a memory bound, saying so.
test-asan: deps
	@[ -f $(ASAN_BUILD)/build.ninja ] || meson setup $(ASAN_BUILD) -Dbuildtype=debugoptimized \
	  -Db_sanitize=address,undefined -Db_lundef=false -Db_lto=false
	ninja -C $(ASAN_BUILD)
	@EXFILWATCH_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  bash tests/run.sh $(ASAN_BUILD)

# libFuzzer targets (clang, ASan + UBSan), each run FUZZ_SECONDS, two at a
# time, seeded from ../shared (tests/fuzz/run_fuzz.sh).
FUZZ_TARGETS = vxlan geneve l2l4 dns dns_tcp tls rules config registered_domain redis_reply
fuzz: deps
	@[ -f $(FUZZ_BUILD)/build.ninja ] || CC=clang CXX=clang++ meson setup $(FUZZ_BUILD) -Dfuzzing=true \
	  -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false -Db_lto=false
	ninja -C $(FUZZ_BUILD) $(addprefix tests/fuzz/fuzz_,$(FUZZ_TARGETS))
	@bash tests/fuzz/run_fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Mirrors at twice the measured no-loss rate for 60 s (opt-in: about 3 minutes;
# the sensor pinned to one CPU, the sender to the other; needs two CPUs).
test-overload: build
	@EXFILWATCH=$(BUILD)/exfilwatch SHARED_DIR=$(CURDIR)/../shared python3 tests/integration/robust_overload.py

# Builds, then runs the sensor on a bundled capture and shows its alerts.
demo: deps build
	@bash deploy/demo.sh $(BUILD)

# End to end with the kernel's VXLAN mirror in network namespaces (root,
# opt-in, not in CI): iodine through ../shared/lab, alerted by `exfilwatch run`.
test-e2e: deps build
	@bash tests/e2e/kernel_mirror.sh $(BUILD)

# Installs binary, configuration, rules, model, systemd unit and man page
# (docs/operations.md); DESTDIR=/staging for a staged install.
install: build
	meson install -C $(BUILD) --no-rebuild $(if $(DESTDIR),--destdir $(DESTDIR))

# Every benchmark side by side with its baseline (bench/README.md): replay vs
# a bare libpcap loop vs tshark on the shared captures and on a generated
# 5M-packet mixed capture, then live vs a bare recvmmsg loop. QUICK=1: ~3 min.
# On the release build (make release).
bench: release
	@bash bench/run.sh $(RELEASE_BUILD)

# Instructions per packet by stage (callgrind), as markdown table rows for
# bench/README.md. Its own build: the release code plus -g for attribution.
bench-stages: deps
	@[ -f $(PROF_BUILD)/build.ninja ] || meson setup $(PROF_BUILD) -Ddebug=true -Db_ndebug=true
	ninja -C $(PROF_BUILD) exfilwatch bench/pcap_loop
	@bash bench/stage_costs.sh $(PROF_BUILD)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

tidy: build
	clang-tidy -p $(BUILD) $$(git ls-files 'src/*.cc')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(PROF_BUILD) $(RELEASE_BUILD)
