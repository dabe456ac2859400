# aibackup — PGXS build.
#
#   make && make install          build and install the extension
#   make unittest                 build and run the pure-C unit tests
#   scripts/test.sh               the whole test suite (see README)

MODULE_big = aibackup
EXTENSION = aibackup
DATA = $(wildcard sql/aibackup--*.sql)
PGFILEDESC = "aibackup - table-by-table backups to S3, restorable from SQL"

CORE_SRCS = $(sort $(wildcard src/core/*.c))
OBJS = $(CORE_SRCS:.c=.o) \
	$(patsubst %.c,%.o,$(sort $(wildcard src/pg/*.c))) \
	$(patsubst %.c,%.o,$(sort $(wildcard src/jobs/*.c))) \
	$(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK = -lcurl -lz -lssl -lcrypto

UNIT_TESTS = test/unit/test_core test/unit/test_streams test/unit/test_s3_rules
EXTRA_CLEAN = $(UNIT_TESTS) test/s3/test_s3_client

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The pure-C core builds and runs without PostgreSQL.
UNIT_CFLAGS = -O1 -g -std=gnu99 -Wall -Wextra -Wno-unused-parameter \
	-Wmissing-prototypes -Wdeclaration-after-statement -Werror -Isrc
UNIT_LIBS = -lcurl -lz -lssl -lcrypto

test/unit/%: test/unit/%.c $(CORE_SRCS) $(wildcard src/core/*.h) test/unit/tap.h
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(CORE_SRCS) $(UNIT_LIBS)

test/s3/%: test/s3/%.c $(CORE_SRCS) $(wildcard src/core/*.h) test/unit/tap.h
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(CORE_SRCS) $(UNIT_LIBS)

testbin: $(UNIT_TESTS) test/s3/test_s3_client

unittest: $(UNIT_TESTS)
	prove $^ :: || exit 1

.PHONY: unittest testbin
