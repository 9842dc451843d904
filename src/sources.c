/* sources.c - the config's sources ([source NAME]) and where each was
 * read to: a position is handed to the handle to be written with its next
 * write (store.c), so that the records and the position that covers them
 * are stored in one transaction. */
#include <string.h>

#include "store.h"

int sponge_position_set(sponge *sp, const char *name,
			const sponge_position *pos)
{
	SP_GUARD;
	if (!sp_usable(sp) || !name || !*name || !pos)
		return SPONGE_EINVAL;
	char *n = sp_strdup(name);
	char *c = pos->cursor ? sp_strdup(pos->cursor) : NULL;
	if (!n || (pos->cursor && !c)) {
		sp_free(n);
		return sp_fail(sp, SPONGE_ENOMEM, "out of memory");
	}
	sp_free(sp->pos_name);
	sp_free(sp->pos_cursor);
	sp->pos_name = n;
	sp->pos_cursor = c;
	sp->pos = *pos;
	sp->pos.cursor = c;
	return SPONGE_OK;
}

int sponge_position_get(sponge *sp, const char *name, sponge_position *pos,
			int *found)
{
	SP_GUARD;
	if (!sp_usable(sp) || !name || !pos || !found)
		return SPONGE_EINVAL;
	return sp_store_position_get(sp, name, pos, found);
}

size_t sponge_sources(const sponge *sp)
{
	return sp ? sp->cfg.nsources : 0;
}

int sponge_source_get(const sponge *sp, size_t i, sponge_source *out)
{
	if (!sp || !out || i >= sp->cfg.nsources)
		return SPONGE_EINVAL;
	const sp_source_cfg *s = &sp->cfg.sources[i];
	*out = (sponge_source){s->name,	   s->path,	    s->tag,
			       s->host,	   s->format,	    s->level,
			       s->detect_level, s->join,    s->type,
			       s->directory, s->match,	    s->priority};
	return SPONGE_OK;
}
