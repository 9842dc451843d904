/* The TZif check (tzif.c): every zone file of the system's tzdata is
 * whole; damaged copies of one, each in its own way, are not. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "unit.h"

static int checked, refused;

static int visit(const char *path, const struct stat *st, int type,
		 struct FTW *ftw)
{
	(void)st, (void)ftw;
	char magic[4];
	int fd = type == FTW_F ? open(path, O_RDONLY) : -1;
	bool tzif = fd >= 0 && read(fd, magic, 4) == 4 &&
		    !memcmp(magic, "TZif", 4);
	if (fd >= 0)
		close(fd);
	if (tzif) {
		checked++;
		if (sp_tzif_check(path)) {
			refused++;
			fprintf(stderr, "%s: %s\n", path, sp_tzif_check(path));
		}
	}
	return 0;
}

START_TEST(every_system_zone_is_whole)
{
	nftw("/usr/share/zoneinfo", visit, 16, FTW_PHYS);
	ck_assert_int_gt(checked, 300);
	ck_assert_int_eq(refused, 0);
}
END_TEST

/* A copy of Europe/Berlin damaged at byte `at` (len bytes of `with`),
 * or cut to `cut` bytes. */
static const struct {
	long at;  /* <0: from the end */
	const char *with;
	size_t len;
	long cut; /* 0: not cut */
} damage[] = {
	{20, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
	     "\xff\xff\xff\xff\xff\xff\xff\xff", 24, 0}, /* all counts 0xFF */
	{32, "\x7f\xff\xff\xff", 4, 0},                 /* timecnt */
	{36, "\x00\x00\x00\x00", 4, 0},                 /* no types */
	{0, "TZix", 4, 0},                              /* magic */
	{0, NULL, 0, 100},                              /* cut short */
	{-1, "X", 1, 0},                                /* footer */
};

START_TEST(damaged_zone_files_are_refused)
{
	FILE *in = fopen("/usr/share/zoneinfo/Europe/Berlin", "rb");
	ck_assert_ptr_nonnull(in);
	static unsigned char good[1 << 16];
	size_t n = fread(good, 1, sizeof good, in);
	fclose(in);
	char path[] = "/tmp/tzif-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, good, n), (ssize_t)n);
	ck_assert_ptr_null(sp_tzif_check(path)); /* the copy itself is fine */
	for (size_t i = 0; i < sizeof damage / sizeof damage[0]; i++) {
		static unsigned char bad[1 << 16];
		memcpy(bad, good, n);
		size_t len = damage[i].cut ? (size_t)damage[i].cut : n;
		if (damage[i].with) {
			long at = damage[i].at < 0 ? (long)n + damage[i].at
						   : damage[i].at;
			memcpy(bad + at, damage[i].with, damage[i].len);
		}
		ck_assert_int_eq(ftruncate(fd, 0), 0);
		ck_assert_int_eq(pwrite(fd, bad, len, 0), (ssize_t)len);
		ck_assert_msg(sp_tzif_check(path) != NULL, "damage %zu passed",
			      i);
	}
	close(fd);
	unlink(path);
}
END_TEST

Suite *tzif_suite(void)
{
	Suite *s = suite_create("tzif");
	TCase *t = tcase_create("tzif");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, every_system_zone_is_whole);
	tcase_add_test(t, damaged_zone_files_are_refused);
	suite_add_tcase(s, t);
	return s;
}
