# aibackup — PGXS build.
#
#   make && make install          build and install the extension
#   make unittest                 build and run the pure-C unit tests
#   make santest                  the same under ASan + UBSan (+ LeakSanitizer)
#   make fuzzbin                  libFuzzer targets (clang-14); scripts/fuzz.sh runs them
#   make indent                   pgindent the C sources (scripts/indent.sh)
#   make indent-check             list the files pgindent would change, change nothing
#   make installcheck             pg_regress suite against a running server (below)
#   make installcheck-private     the tests that need a server of their own
#   scripts/installcheck.sh       both, in a scratch cluster it starts and stops
#   scripts/test.sh               the whole test suite (see README)

MODULE_big = aibackup
EXTENSION = aibackup
PGFILEDESC = "aibackup - table-by-table backups to S3, restorable from SQL"

# pg_regress tests: sql/<name>.sql, expected/<name>.out (names must not match
# the aibackup--*.sql pattern of DATA).  REGRESS needs only a running server
# without shared_preload_libraries = aibackup and with the aibackup.*
# settings at their defaults; it changes nothing outside its database but
# two regress_aibackup_* roles it drops again.  REGRESS_PRIVATE needs a
# server of its own, started with test/regress/private.conf (it runs ALTER
# SYSTEM): scripts/installcheck.sh runs both.
REGRESS = catalog settings functions upgrade
REGRESS_PRIVATE = settings_checks presign

# Out-of-tree builds work too (what Debian's pg_buildext does:
# make -C build-15 -f SRC/Makefile VPATH=SRC): PGXS sets srcdir (to "." in
# the tree), files are found under $(srcdir) and named relative to it, so
# objects land in the build directory and sources come through VPATH.
# These stay lazy ("="): srcdir is defined only once PGXS is included.
srcfiles = $(sort $(patsubst $(srcdir)/%,%,$(wildcard $(addprefix $(srcdir)/,$(1)))))
DATA = $(call srcfiles,sql/aibackup--*.sql)
CORE_SRCS = $(call srcfiles,src/core/*.c)
OBJS = $(CORE_SRCS:.c=.o) \
	$(patsubst %.c,%.o,$(call srcfiles,src/pg/*.c)) \
	$(patsubst %.c,%.o,$(call srcfiles,src/jobs/*.c)) \
	$(patsubst %.c,%.o,$(call srcfiles,src/*.c))

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK = -lcurl -ldeflate -lz -lssl -lcrypto -lpthread

UNIT_TESTS = test/unit/test_core test/unit/test_streams test/unit/test_s3_rules
SAN_TESTS = $(addsuffix .san,$(UNIT_TESTS))
FUZZ_TARGETS = test/fuzz/fuzz_manifest test/fuzz/fuzz_json test/fuzz/fuzz_xml \
	test/fuzz/fuzz_index
S3_TESTS = test/s3/test_s3_client test/s3/test_s3_limits
EXTRA_CLEAN = $(UNIT_TESTS) $(S3_TESTS) $(SAN_TESTS) test/unit/test_streams.tsan \
	test/s3/test_s3_client.tsan $(FUZZ_TARGETS)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: any header change rebuilds every object
# (a struct that grew a field must never meet an object built without it).
$(OBJS): $(wildcard $(srcdir)/src/*.h $(srcdir)/src/*/*.h)

# Out of tree, the object directories (src/core, ...) must be made first.
# Named by absolute path: a relative one would be found through VPATH in the
# source tree and taken as already there.
ifneq ($(abspath $(srcdir)),$(CURDIR))
OBJDIRS = $(sort $(patsubst %/,%,$(addprefix $(CURDIR)/,$(dir $(OBJS)))))
$(OBJS) $(OBJS:.o=.bc): | $(OBJDIRS)
$(OBJDIRS):
	$(MKDIR_P) $@
endif

# The pure-C core builds and runs without PostgreSQL.
UNIT_CFLAGS = -O1 -g -std=gnu99 -Wall -Wextra -Wno-unused-parameter \
	-Wmissing-prototypes -Wdeclaration-after-statement -Werror -Isrc
UNIT_LIBS = -lcurl -ldeflate -lz -lssl -lcrypto -lpthread

test/unit/%: test/unit/%.c $(CORE_SRCS) $(wildcard src/core/*.h) test/unit/tap.h
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(CORE_SRCS) $(UNIT_LIBS)

test/s3/%: test/s3/%.c $(CORE_SRCS) $(wildcard src/core/*.h) test/unit/tap.h
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(CORE_SRCS) $(UNIT_LIBS)

# S3's part limit, reached with megabytes: this binary alone builds the core
# with 3 parts per upload instead of 10000 (src/core/s3.h)
test/s3/test_s3_limits: UNIT_CFLAGS += -DS3_MAX_PARTS=3

testbin: $(UNIT_TESTS) $(S3_TESTS)

unittest: $(UNIT_TESTS)
	prove $^ :: || exit 1

# The unit tests again under AddressSanitizer (LeakSanitizer included) and
# UndefinedBehaviorSanitizer; the first finding aborts the binary.
SAN_CC = gcc
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all

test/unit/%.san: test/unit/%.c test/unit/san_options.c $(CORE_SRCS) $(wildcard src/core/*.h) test/unit/tap.h
	$(SAN_CC) $(UNIT_CFLAGS) $(SAN_FLAGS) -o $@ $< test/unit/san_options.c \
		$(CORE_SRCS) $(UNIT_LIBS)

# The gzip tests, whose deflater runs a thread, under ThreadSanitizer.
test/unit/test_streams.tsan: test/unit/test_streams.c $(CORE_SRCS) $(wildcard src/core/*.h) test/unit/tap.h
	$(SAN_CC) $(UNIT_CFLAGS) -fsanitize=thread -DAB_TEST_GZIP_THREADS_ONLY \
		-o $@ $< $(CORE_SRCS) $(UNIT_LIBS)

# The S3 reader's tests, whose prefetch runs a thread, under ThreadSanitizer
# (they need the S3 server, as test/s3/test_s3_client does).
test/s3/test_s3_client.tsan: test/s3/test_s3_client.c $(CORE_SRCS) $(wildcard src/core/*.h) test/unit/tap.h
	$(SAN_CC) $(UNIT_CFLAGS) -fsanitize=thread -DAB_TEST_READER_ONLY \
		-o $@ $< $(CORE_SRCS) $(UNIT_LIBS)

sanbin: $(SAN_TESTS) test/unit/test_streams.tsan test/s3/test_s3_client.tsan

santest: $(SAN_TESTS) test/unit/test_streams.tsan
	prove $^ :: || exit 1

# libFuzzer targets for the readers of untrusted bytes (manifests, JSON,
# S3's XML answers); they need only the network-free core.  The allocators
# are wrapped so that a target can make one allocation fail
# (test/fuzz/fuzz_common.h).
FUZZ_CC = clang-14
FUZZ_FLAGS = -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all \
	-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup
FUZZ_SRCS = src/core/buf.c src/core/json.c src/core/manifest.c src/core/xml.c \
	src/core/bindex.c

test/fuzz/fuzz_%: test/fuzz/fuzz_%.c test/fuzz/fuzz_common.h $(FUZZ_SRCS) $(wildcard src/core/*.h)
	$(FUZZ_CC) $(UNIT_CFLAGS) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_SRCS)

fuzzbin: $(FUZZ_TARGETS)

# PostgreSQL's layout (pgindent with Debian's pg-bsd-indent, PostgreSQL's
# typedefs plus the project's own, generated): scripts/indent.sh.
indent:
	$(srcdir)/scripts/indent.sh

indent-check:
	$(srcdir)/scripts/indent.sh --check

installcheck-private:
	$(MAKE) installcheck REGRESS="$(REGRESS_PRIVATE)"

.PHONY: unittest testbin sanbin santest fuzzbin indent indent-check installcheck-private
