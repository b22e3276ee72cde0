/* The store heals itself. The state lives in four places: the store file,
 * its backup copy (refreshed after every commit), fulcrumd's memory (the
 * last committed state) and the dataplane (the last pushed state). When
 * the store file is deleted, truncated, corrupted or edited behind
 * fulcrumd's back, the other three rebuild it:
 *
 *   - the damaged files are never deleted: they are renamed aside, to
 *     STORE.damaged-TIME (with their -wal and -shm), for a person to look
 *     at;
 *   - a new store is made from the backup copy, with its change log; if
 *     the backup is damaged too, it is set aside as well and the store
 *     starts empty;
 *   - while fulcrumd runs, whatever the backup lacks (normally nothing)
 *     is committed from memory as one automatic change by user
 *     "fulcrumd", so the state is exactly what was committed last; the
 *     log versions that only the damaged file held are named in its
 *     reason;
 *   - at start there is no memory: when the rebuilt store is behind the
 *     dataplane, which the dataplane's version and digest show, the live
 *     state is adopted, again as an automatic change.
 *
 * No step pushes anything the dataplane does not already run: the state
 * after healing is the one that was live, so the dataplane is in sync (at
 * most relabelled with the new version). Every heal is printed and written
 * to the audit log. Healing restores, it changes nothing live, so it runs
 * while frozen too. */
#ifndef FULCRUM_HEAL_H
#define FULCRUM_HEAL_H

#include <stdbool.h>
#include <stddef.h>

#include "mgmt.h"

/* Opens d->cfg's store for d at start, setting aside and rebuilding it
 * when it cannot be used; *healed then says so. 0, or -1 with err when
 * there is no store to run on (a store of a newer schema, say). */
int heal_open(struct fulcrumd *d, bool *healed, char *err, size_t len);

/* Checks the store (store_check) and rebuilds it if it was damaged. 0 when
 * the store is whole, as found or as rebuilt; -1 with err when it is
 * damaged and could not be rebuilt: nothing can be committed then. */
int heal_check(struct fulcrumd *d, char *err, size_t len);

/* After a heal at start: adopts the dataplane's live state when the
 * rebuilt store is behind it (d->sync says held). Returns true once there
 * is nothing more to do. */
bool heal_adopt_live(struct fulcrumd *d);

#endif
