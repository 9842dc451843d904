/* timeutil.c - durations, sizes and ISO 8601 times. */
#define _DEFAULT_SOURCE /* timegm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

int64_t sponge_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Local time of a date (year since 1900, month 0-11), as mktime sees it. */
static time_t local_date(int year, int mon, int day, int h, int mi, int se)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = year;
	tm.tm_mon = mon;
	tm.tm_mday = day;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	tm.tm_isdst = -1;
	return mktime(&tm);
}

/* The start of an hour of local time.  mktime looks at the zone file
 * each time (a stat per call) and a log's lines come many to an hour:
 * the last answer is kept, with the TZ it was made under (zones change
 * their offset on the hour). */
static time_t hour_start(int year, int mon, int day, int h)
{
	static _Thread_local struct {
		int year, mon, day, h;
		char tz[64];
		time_t start;
		bool ok;
	} last;
	const char *tz = getenv("TZ");
	if (!tz)
		tz = "";
	if (!last.ok || last.year != year || last.mon != mon ||
	    last.day != day || last.h != h || strncmp(last.tz, tz, 63) != 0 ||
	    strlen(tz) > 62) {
		last.start = local_date(year, mon, day, h, 0, 0);
		last.year = year;
		last.mon = mon;
		last.day = day;
		last.h = h;
		snprintf(last.tz, sizeof last.tz, "%s", tz);
		last.ok = true;
	}
	return last.start;
}

int64_t sp_yearless_time(int mon, int day, int h, int mi, int se,
			 int64_t now_us)
{
	time_t now = (time_t)(now_us / 1000000);
	struct tm lt;
	gmtime_r(&now, &lt); /* the year, near enough: a day either way is
				 settled below */
	int year = lt.tm_year;
	if ((lt.tm_mon == 0 && lt.tm_mday == 1) ||
	    (lt.tm_mon == 11 && lt.tm_mday == 31)) /* the local year may differ */
		localtime_r(&now, &lt), year = lt.tm_year;
	time_t v = hour_start(year, mon, day, h) + mi * 60 + se;
	if (v > now + 86400) /* December's lines read in January */
		v = hour_start(year - 1, mon, day, h) + mi * 60 + se;
	return (int64_t)v * 1000000;
}

int64_t sp_clamp_time(int64_t t)
{
	return t < SP_TIME_MIN ? SP_TIME_MIN : t > SP_TIME_MAX ? SP_TIME_MAX : t;
}

int64_t sp_sub(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static bool digit(char c) { return c >= '0' && c <= '9'; }

/* Reads digits into *v; false on overflow or no digits. */
static bool read_uint(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	if (!digit(*s))
		return false;
	while (digit(*s)) {
		if (x > (UINT64_MAX - 9) / 10)
			return false;
		x = x * 10 + (uint64_t)(*s++ - '0');
	}
	*v = x;
	*p = s;
	return true;
}

int sponge_parse_duration(const char *text, int64_t *out_us)
{
	static const struct {
		const char *suffix;
		uint64_t us;
	} units[] = {
		{"ms", 1000ULL},           {"s", 1000000ULL},
		{"m", 60000000ULL},        {"h", 3600000000ULL},
		{"d", 86400000000ULL},     {"w", 604800000000ULL},
	};
	if (!text || !out_us || !*text)
		return SPONGE_EINVAL;
	const char *p = text;
	uint64_t total = 0;
	while (*p) {
		uint64_t n;
		if (!read_uint(&p, &n))
			return SPONGE_EINVAL;
		uint64_t mul = 0;
		size_t ul = 0;
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			size_t l = strlen(units[i].suffix);
			if (strncmp(p, units[i].suffix, l) == 0 &&
			    !(l == 1 && p[0] == 'm' && p[1] == 's')) {
				mul = units[i].us;
				ul = l;
				break;
			}
		}
		if (!mul) {
			if (*p || p != text + strlen(text) || total)
				return SPONGE_EINVAL;
			mul = 1000000ULL; /* bare number: seconds */
		}
		if (n > (uint64_t)INT64_MAX / mul ||
		    total > (uint64_t)INT64_MAX - n * mul)
			return SPONGE_EINVAL;
		total += n * mul;
		p += ul;
	}
	*out_us = (int64_t)total;
	return SPONGE_OK;
}

int sponge_parse_size(const char *text, uint64_t *out)
{
	if (!text || !out)
		return SPONGE_EINVAL;
	const char *p = text;
	uint64_t n, mul = 1;
	if (!read_uint(&p, &n))
		return SPONGE_EINVAL;
	switch (*p) {
	case 'k': case 'K': mul = 1ULL << 10; p++; break;
	case 'm': case 'M': mul = 1ULL << 20; p++; break;
	case 'g': case 'G': mul = 1ULL << 30; p++; break;
	default: break;
	}
	if (mul > 1 && *p == 'i')
		p++;
	if (*p == 'B' || *p == 'b')
		p++;
	if (*p || n > UINT64_MAX / mul)
		return SPONGE_EINVAL;
	*out = n * mul;
	return SPONGE_OK;
}

/* Exactly `width` digits into *v. */
static bool fixed(const char **p, int width, int *v)
{
	int x = 0;
	for (int i = 0; i < width; i++) {
		if (!digit((*p)[i]))
			return false;
		x = x * 10 + ((*p)[i] - '0');
	}
	*p += width;
	*v = x;
	return true;
}

static int parse_iso(const char *s, int64_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int y, mo, d, h = 0, mi = 0, sec = 0;
	int64_t frac = 0;
	if (!fixed(&s, 4, &y) || *s++ != '-' || !fixed(&s, 2, &mo) ||
	    *s++ != '-' || !fixed(&s, 2, &d))
		return SPONGE_EINVAL;
	if (*s == 'T' || *s == 't' || *s == ' ') {
		s++;
		if (!fixed(&s, 2, &h) || *s++ != ':' || !fixed(&s, 2, &mi))
			return SPONGE_EINVAL;
		if (*s == ':') {
			s++;
			if (!fixed(&s, 2, &sec))
				return SPONGE_EINVAL;
			if (*s == '.' || *s == ',') {
				s++;
				int64_t scale = 100000;
				if (!digit(*s))
					return SPONGE_EINVAL;
				for (; digit(*s); s++, scale /= 10)
					frac += (*s - '0') * scale;
			}
		}
	}
	int64_t off = 0;
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int sign = *s++ == '-' ? -1 : 1, oh, om = 0;
		if (!fixed(&s, 2, &oh))
			return SPONGE_EINVAL;
		if (*s == ':')
			s++;
		if (digit(*s) && !fixed(&s, 2, &om))
			return SPONGE_EINVAL;
		if (oh > 23 || om > 59)
			return SPONGE_EINVAL;
		off = sign * (int64_t)(oh * 3600 + om * 60);
	}
	if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60)
		return SPONGE_EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	if (tm.tm_mday != d) /* 2026-02-31 normalised away */
		return SPONGE_EINVAL;
	*out = ((int64_t)t - off) * 1000000 + frac;
	return SPONGE_OK;
}

/* Local midnight `days_back` days before the day of now_us. */
static int local_midnight(int64_t now_us, int days_back, int64_t *out_us)
{
	time_t t = (time_t)(now_us / 1000000);
	struct tm tm;
	if (!localtime_r(&t, &tm))
		return SPONGE_EINVAL;
	tm.tm_mday -= days_back; /* mktime normalises month and year */
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1; /* whatever is in force at that midnight */
	time_t m = mktime(&tm);
	if (m == (time_t)-1)
		return SPONGE_EINVAL;
	*out_us = (int64_t)m * 1000000;
	return SPONGE_OK;
}

int sponge_parse_time(const char *text, int64_t now_us, int64_t *out_us)
{
	if (!text || !out_us)
		return SPONGE_EINVAL;
	if (strcmp(text, "now") == 0) {
		*out_us = now_us;
		return SPONGE_OK;
	}
	if (strcmp(text, "today") == 0)
		return local_midnight(now_us, 0, out_us);
	if (strcmp(text, "yesterday") == 0)
		return local_midnight(now_us, 1, out_us);
	if (strlen(text) >= 10 && text[4] == '-')
		return parse_iso(text, out_us);
	int64_t d;
	if (sponge_parse_duration(text, &d) != SPONGE_OK)
		return SPONGE_EINVAL;
	*out_us = now_us - d;
	return SPONGE_OK;
}

void sponge_format_time(int64_t t_us, char buf[32])
{
	int64_t secs = t_us / 1000000, us = t_us % 1000000;
	if (us < 0) {
		us += 1000000;
		secs--;
	}
	time_t t = (time_t)secs;
	struct tm tm;
	if (!gmtime_r(&t, &tm)) {
		snprintf(buf, 32, "invalid-time");
		return;
	}
	int year = tm.tm_year + 1900;
	if (year < 0 || year > 9999) {
		snprintf(buf, 32, "invalid-time");
		return;
	}
	snprintf(buf, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%06uZ",
		 (unsigned)year % 10000u,
		 (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
		 (unsigned)tm.tm_hour % 100u,
		 (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
		 (unsigned)us % 1000000u);
}

void sponge_format_span(int64_t us, char *b, size_t n)
{
	int64_t s = us / 1000000;
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(b, n, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(b, n, "%lldm %llds", (long long)(s / 60),
			 (long long)(s % 60));
	else if (s < 86400)
		snprintf(b, n, "%lldh %lldm", (long long)(s / 3600),
			 (long long)(s % 3600 / 60));
	else
		snprintf(b, n, "%lldd %lldh", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
}
