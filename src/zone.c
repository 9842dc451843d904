/* zone.c - [mail] timezone: the times a digest shows people.
 *
 * "local" is the process's own zone (TZ, else /etc/localtime) through
 * localtime_r; "UTC" is gmtime_r; an IANA name ("Europe/Berlin") goes
 * through GLib's GTimeZone, which reads the system's tzdata.  GLib is
 * loaded (dlopen) only when a flush needs a named zone, so ingestion
 * does not pay for it, and no process-wide TZ is ever changed. */
#define _GNU_SOURCE /* tm_gmtoff, tm_zone */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

/* GLib's GTimeZone ABI (glib/gtimezone.h, stable since 2.68). */
enum { G_TIME_TYPE_UNIVERSAL = 2 };
typedef void *(*g_new_id_fn)(const char *identifier);
typedef int (*g_find_fn)(void *tz, int type, int64_t time_s);
typedef int32_t (*g_offset_fn)(void *tz, int interval);
typedef const char *(*g_abbr_fn)(void *tz, int interval);
typedef void (*g_unref_fn)(void *tz);

struct sp_zone {
	int kind; /* 0 local, 1 UTC, 2 named */
	void *lib, *tz;
	g_find_fn find;
	g_offset_fn offset;
	g_abbr_fn abbr;
	g_unref_fn unref;
	char name[64];
};

static const char *const NOT_A_ZONE =
	"not local, UTC or a zone of the system's tzdata (like "
	"Europe/Berlin)";

const char *sp_zone_problem(const char *spec)
{
	if (!spec || !strcmp(spec, "local") || !strcasecmp(spec, "UTC"))
		return NULL;
	/* an IANA name: letters, digits, "/_-+", no ".." nor a leading "/" */
	size_t n = strlen(spec);
	if (!n || n >= 64 || spec[0] == '/' || strstr(spec, ".."))
		return NOT_A_ZONE;
	for (const char *p = spec; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("/_-+", *p)))
			return NOT_A_ZONE;
	/* the file GLib will read: $TZDIR/NAME, else the system's */
	const char *dir = getenv("TZDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/%s",
		 dir && *dir ? dir : "/usr/share/zoneinfo", spec);
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return NOT_A_ZONE;
	const char *bad = sp_tzif_check(path);
	if (!bad)
		return NULL;
	static _Thread_local char why[256];
	snprintf(why, sizeof why, "the zone file %.120s is damaged: %s", path,
		 bad);
	return why;
}

static int load_glib(sp_zone *z, spbuf *why)
{
	z->lib = dlopen("libglib-2.0.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!z->lib) {
		sb_printf(why, "timezone %s needs GLib (libglib-2.0.so.0): %s",
			  z->name, dlerror());
		return SPONGE_ECONFIG;
	}
	g_new_id_fn new_id;
	/* a void * to a function pointer: POSIX dlsym's own way */
	*(void **)&new_id = dlsym(z->lib, "g_time_zone_new_identifier");
	*(void **)&z->find = dlsym(z->lib, "g_time_zone_find_interval");
	*(void **)&z->offset = dlsym(z->lib, "g_time_zone_get_offset");
	*(void **)&z->abbr = dlsym(z->lib, "g_time_zone_get_abbreviation");
	*(void **)&z->unref = dlsym(z->lib, "g_time_zone_unref");
	if (!new_id || !z->find || !z->offset || !z->abbr || !z->unref) {
		sb_printf(why, "timezone %s: this GLib is older than 2.68",
			  z->name);
		return SPONGE_ECONFIG;
	}
	z->tz = new_id(z->name);
	if (!z->tz) {
		sb_printf(why, "timezone %s: no such zone in the system's "
			       "tzdata", z->name);
		return SPONGE_ECONFIG;
	}
	return SPONGE_OK;
}

int sp_zone_open(const char *spec, sp_zone **out, spbuf *why)
{
	*out = NULL;
	sp_zone *z = sp_malloc(sizeof *z);
	if (!z)
		return SPONGE_ENOMEM;
	memset(z, 0, sizeof *z);
	if (!spec || !strcmp(spec, "local")) {
		z->kind = 0;
		tzset();
	} else if (!strcasecmp(spec, "UTC")) {
		z->kind = 1;
	} else {
		z->kind = 2;
		snprintf(z->name, sizeof z->name, "%s", spec);
		const char *bad = sp_zone_problem(spec);
		int rc = !bad ? load_glib(z, why)
			      : (sb_printf(why, "timezone %s: %s", spec, bad),
				 SPONGE_ECONFIG);
		if (rc) {
			sp_zone_close(z);
			return rc;
		}
	}
	*out = z;
	return SPONGE_OK;
}

void sp_zone_close(sp_zone *z)
{
	if (!z)
		return;
	if (z->tz)
		z->unref(z->tz);
	if (z->lib)
		dlclose(z->lib);
	sp_free(z);
}

void sp_zone_civil(const sp_zone *z, int64_t t_us, sp_civil *c)
{
	/* floor to the second, also before 1970 */
	int64_t s = t_us / 1000000 - (t_us % 1000000 < 0);
	struct tm tm;
	time_t t = (time_t)s;
	long off = 0;
	const char *abbr = "UTC";
	if (z && z->kind == 0 && localtime_r(&t, &tm)) {
		off = tm.tm_gmtoff;
		abbr = tm.tm_zone ? tm.tm_zone : "";
	} else if (z && z->kind == 2) {
		int iv = z->find(z->tz, G_TIME_TYPE_UNIVERSAL, s);
		off = z->offset(z->tz, iv);
		abbr = z->abbr(z->tz, iv);
		t = (time_t)(s + off);
		gmtime_r(&t, &tm);
	} else {
		gmtime_r(&t, &tm);
	}
	c->year = tm.tm_year + 1900;
	c->mon = tm.tm_mon + 1;
	c->mday = tm.tm_mday;
	c->wday = tm.tm_wday;
	c->hour = tm.tm_hour;
	c->min = tm.tm_min;
	c->sec = tm.tm_sec;
	c->off_s = (int)off;
	snprintf(c->abbr, sizeof c->abbr, "%s", abbr ? abbr : "");
}

void sp_zone_label(const sp_civil *c, char *buf, size_t n)
{
	int a = c->off_s < 0 ? -c->off_s : c->off_s;
	/* "CET, UTC+01:00"; a zone with no name of its own ("+0530" or
	 * "-03") just "UTC+05:30"; UTC itself "UTC" */
	bool named = c->abbr[0] && c->abbr[0] != '+' && c->abbr[0] != '-';
	if (!c->off_s && (!named || !strcmp(c->abbr, "UTC")))
		snprintf(buf, n, "UTC");
	else if (named)
		snprintf(buf, n, "%s, UTC%c%02d:%02d", c->abbr,
			 c->off_s < 0 ? '-' : '+', a / 3600, a / 60 % 60);
	else
		snprintf(buf, n, "UTC%c%02d:%02d", c->off_s < 0 ? '-' : '+',
			 a / 3600, a / 60 % 60);
}
