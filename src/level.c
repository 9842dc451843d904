/* level.c - severity names, aliases and level detection in log lines. */
#include <string.h>
#include <strings.h>

#include "internal.h"

static const char *const level_names[8] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

/* The same, padded to the longest ("warning"): a column of the log. */
static const char *const level_columns[8] = {
	"emerg  ", "alert  ", "crit   ", "err    ",
	"warning", "notice ", "info   ", "debug  ",
};

const char *sp_level_column(int level) { return level_columns[level & 7]; }

static const struct alias {
	const char *name;
	unsigned char len;
	unsigned char level;
} aliases[] = {
#define A(name, level) {name, sizeof name - 1, level}
	/* by first letter: see first_alias() */
	A("alert", 1),	  A("crit", 2),	     A("critical", 2), A("debug", 7),
	A("emerg", 0),	  A("emergency", 0), A("err", 3),      A("error", 3),
	A("fatal", 2),	  A("info", 6),	     A("information", 6),
	A("informational", 6), A("notice", 5), A("panic", 0), A("trace", 7),
	A("warning", 4),  A("warn", 4),
#undef A
};
#define NALIASES (sizeof aliases / sizeof aliases[0])

/* The first alias starting with letter c (lower case), or NALIASES. */
static size_t first_alias(char c)
{
	switch (c) {
	case 'a': return 0;
	case 'c': return 1;
	case 'd': return 3;
	case 'e': return 4;
	case 'f': return 8;
	case 'i': return 9;
	case 'n': return 12;
	case 'p': return 13;
	case 't': return 14;
	case 'w': return 15;
	default: return NALIASES;
	}
}

/* Byte classes for the scanners below: one table lookup per byte. */
enum {
	C_DIGIT = 1,
	C_ALPHA = 2,
	C_SPACE = 4,  /* space, tab */
	C_TS = 8,     /* in a timestamp token: digits and -:.,/TZ+ */
	C_KEY = 16,   /* may start a level key (level lvl loglevel severity) */
	C_WEND = 32,  /* may end a level word: :]>)|, */
};
#define DIGITS(f)                                                              \
	['0'] = (f), ['1'] = (f), ['2'] = (f), ['3'] = (f), ['4'] = (f),       \
	['5'] = (f), ['6'] = (f), ['7'] = (f), ['8'] = (f), ['9'] = (f)
static const unsigned char cls[256] = {
	DIGITS(C_DIGIT | C_TS),
	[' '] = C_SPACE, ['\t'] = C_SPACE,
	['-'] = C_TS, [':'] = C_TS | C_WEND, ['.'] = C_TS, [','] = C_TS | C_WEND,
	['/'] = C_TS, ['+'] = C_TS,
	[']'] = C_WEND, ['>'] = C_WEND, [')'] = C_WEND, ['|'] = C_WEND,
	['a'] = C_ALPHA, ['b'] = C_ALPHA, ['c'] = C_ALPHA, ['d'] = C_ALPHA,
	['e'] = C_ALPHA, ['f'] = C_ALPHA, ['g'] = C_ALPHA, ['h'] = C_ALPHA,
	['i'] = C_ALPHA, ['j'] = C_ALPHA, ['k'] = C_ALPHA,
	['l'] = C_ALPHA | C_KEY, ['m'] = C_ALPHA, ['n'] = C_ALPHA,
	['o'] = C_ALPHA, ['p'] = C_ALPHA, ['q'] = C_ALPHA, ['r'] = C_ALPHA,
	['s'] = C_ALPHA | C_KEY, ['t'] = C_ALPHA, ['u'] = C_ALPHA,
	['v'] = C_ALPHA, ['w'] = C_ALPHA, ['x'] = C_ALPHA, ['y'] = C_ALPHA,
	['z'] = C_ALPHA,
	['A'] = C_ALPHA, ['B'] = C_ALPHA, ['C'] = C_ALPHA, ['D'] = C_ALPHA,
	['E'] = C_ALPHA, ['F'] = C_ALPHA, ['G'] = C_ALPHA, ['H'] = C_ALPHA,
	['I'] = C_ALPHA, ['J'] = C_ALPHA, ['K'] = C_ALPHA,
	['L'] = C_ALPHA | C_KEY, ['M'] = C_ALPHA, ['N'] = C_ALPHA,
	['O'] = C_ALPHA, ['P'] = C_ALPHA, ['Q'] = C_ALPHA, ['R'] = C_ALPHA,
	['S'] = C_ALPHA | C_KEY, ['T'] = C_ALPHA | C_TS, ['U'] = C_ALPHA,
	['V'] = C_ALPHA, ['W'] = C_ALPHA, ['X'] = C_ALPHA, ['Y'] = C_ALPHA,
	['Z'] = C_ALPHA | C_TS,
};
#undef DIGITS
#define IS(c, f) ((cls[(unsigned char)(c)] & (f)) != 0)

const char *sponge_level_name(int level)
{
	return level >= 0 && level < 8 ? level_names[level] : NULL;
}

static int level_from_word(const char *w, size_t n)
{
	if (n == 1 && w[0] >= '0' && w[0] <= '7')
		return w[0] - '0';
	if (n < 3 || n > 13)
		return -1;
	char first = (char)(w[0] | 0x20);
	for (size_t i = first_alias(first);
	     i < NALIASES && aliases[i].name[0] == first; i++)
		if (aliases[i].len == n && strncasecmp(aliases[i].name, w, n) == 0)
			return aliases[i].level;
	return -1;
}

int sponge_level_from_name(const char *name)
{
	return name ? level_from_word(name, strlen(name)) : -1;
}

static bool is_alpha(unsigned char c) { return IS(c, C_ALPHA); }
static bool is_digit(unsigned char c) { return IS(c, C_DIGIT); }
static bool is_space(unsigned char c) { return IS(c, C_SPACE); }

/* "<N>" or "<PRI>" syslog / sd-daemon prefix. */
static int detect_pri(const char *s, size_t n, size_t *skip)
{
	if (n < 3 || s[0] != '<')
		return -1;
	size_t i = 1;
	int pri = 0;
	while (i < n && i < 4 && is_digit((unsigned char)s[i]))
		pri = pri * 10 + (s[i++] - '0');
	if (i == 1 || i >= n || s[i] != '>' || pri > 191)
		return -1;
	*skip = i + 1;
	return pri & 7;
}

/* Numeric JSON levels: syslog 0-7 (GELF) or bunyan/pino 10…60. */
static int level_from_number(long v)
{
	if (v >= 0 && v <= 7)
		return (int)v;
	if (v >= 60)
		return SPONGE_CRIT;
	if (v >= 50)
		return SPONGE_ERR;
	if (v >= 40)
		return SPONGE_WARNING;
	if (v >= 30)
		return SPONGE_INFO;
	if (v >= 10)
		return SPONGE_DEBUG;
	return -1;
}

static const char *const level_keys[] = {"level", "lvl", "severity",
					 "loglevel"};
static const unsigned char level_key_len[] = {5, 3, 8, 8};

/* `"level": "error"` or `"level": 50` anywhere in a JSON object line. */
static int detect_json(const char *s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] != '"' || !IS(s[i + 1], C_KEY))
			continue;
		for (size_t k = 0; k < 4; k++) {
			size_t kl = level_key_len[k];
			if (i + kl + 2 > n ||
			    strncasecmp(s + i + 1, level_keys[k], kl) != 0 ||
			    s[i + 1 + kl] != '"')
				continue;
			size_t j = i + kl + 2;
			while (j < n && is_space((unsigned char)s[j]))
				j++;
			if (j >= n || s[j] != ':')
				continue;
			j++;
			while (j < n && is_space((unsigned char)s[j]))
				j++;
			if (j < n && s[j] == '"') {
				size_t w = ++j;
				while (j < n && is_alpha((unsigned char)s[j]))
					j++;
				if (j < n && s[j] == '"') {
					int l = level_from_word(s + w, j - w);
					if (l >= 0)
						return l;
				}
			} else if (j < n && is_digit((unsigned char)s[j])) {
				long v = 0;
				while (j < n && is_digit((unsigned char)s[j]) &&
				       v < 1000)
					v = v * 10 + (s[j++] - '0');
				int l = level_from_number(v);
				if (l >= 0)
					return l;
			}
		}
	}
	return -1;
}

/* logfmt `level=error` (or lvl=, severity=), value optionally quoted. */
static int detect_logfmt(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!IS(s[i], C_KEY) ||
		    (i > 0 && !is_space((unsigned char)s[i - 1])))
			continue;
		for (size_t k = 0; k < 4; k++) {
			size_t kl = level_key_len[k];
			if (i + kl + 1 >= n ||
			    strncasecmp(s + i, level_keys[k], kl) != 0 ||
			    s[i + kl] != '=')
				continue;
			size_t j = i + kl + 1;
			if (j < n && s[j] == '"')
				j++;
			size_t w = j;
			while (j < n && is_alpha((unsigned char)s[j]))
				j++;
			if (j < n && !is_space((unsigned char)s[j]) &&
			    s[j] != '"')
				continue;
			int l = level_from_word(s + w, j - w);
			if (l >= 0)
				return l;
		}
	}
	return -1;
}

static int letter_level(char c)
{
	switch (c) {
	case 'F': return SPONGE_CRIT;
	case 'E': return SPONGE_ERR;
	case 'W': return SPONGE_WARNING;
	case 'N': return SPONGE_NOTICE;
	case 'I': return SPONGE_INFO;
	case 'D': case 'T': return SPONGE_DEBUG;
	default: return -1;
	}
}

/* A token that looks like a timestamp: starts with a digit (or "[" and a
 * digit) and holds only digits and date/time punctuation. */
static size_t timestamp_token(const char *s, size_t n)
{
	size_t i = 0;
	bool br = false;
	if (i < n && s[i] == '[') {
		br = true;
		i++;
	}
	if (i >= n || !is_digit((unsigned char)s[i]))
		return 0;
	if (!br) { /* up to a space, a ']' or the end */
		while (i < n && IS(s[i], C_TS))
			i++;
		return i < n && !is_space((unsigned char)s[i]) && s[i] != ']' ? 0
									  : i;
	}
	while (i < n && s[i] != ']') { /* spaces too, not tabs */
		if (!IS(s[i], C_TS) && s[i] != ' ')
			return 0;
		i++;
	}
	return i < n ? i + 1 : 0; /* past the ']' */
}

/* "ERROR:", "[warn]", "<crit>", "E ", glog "E1121 …", after up to two
 * timestamp tokens. */
static int detect_word(const char *s, size_t n)
{
	size_t i = 0;
	for (int t = 0; t < 3; t++) {
		while (i < n && is_space((unsigned char)s[i]))
			i++;
		if (t == 2)
			break;
		size_t tl = timestamp_token(s + i, n - i);
		if (!tl)
			break;
		i += tl;
	}
	bool open = i < n && (s[i] == '[' || s[i] == '<' || s[i] == '(');
	if (open)
		i++;
	size_t w = i;
	while (i < n && is_alpha((unsigned char)s[i]))
		i++;
	size_t wl = i - w;
	if (wl == 0)
		return -1;
	char end = i < n ? s[i] : ' ';
	if (wl == 1) {
		/* single capital letter: "E " / "E:" or glog "E1121 " */
		bool glog = !open && i + 4 < n && is_digit((unsigned char)s[i]) &&
			    is_digit((unsigned char)s[i + 1]) &&
			    is_digit((unsigned char)s[i + 2]) &&
			    is_digit((unsigned char)s[i + 3]) &&
			    is_space((unsigned char)s[i + 4]);
		if (glog || is_space((unsigned char)end) || end == ':' ||
		    (open && strchr("]>)", end)))
			return letter_level(s[w]);
		return -1;
	}
	if (!IS(end, C_SPACE | C_WEND))
		return -1;
	return level_from_word(s + w, wl);
}

int sponge_detect_level(const char *line, size_t len, size_t *skip)
{
	size_t dummy;
	if (!skip)
		skip = &dummy;
	*skip = 0;
	if (!line)
		return -1;
	int l = detect_pri(line, len, skip);
	if (l >= 0)
		return l;
	size_t i = 0;
	while (i < len && is_space((unsigned char)line[i]))
		i++;
	if (i < len && line[i] == '{') {
		l = detect_json(line + i, len - i);
		if (l >= 0)
			return l;
	}
	l = detect_word(line, len);
	if (l >= 0)
		return l;
	return detect_logfmt(line, len);
}
