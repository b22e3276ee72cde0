/* A change to the service state: a JSON array of ops, checked and applied
 * as one. The ops, with the fields each takes:
 *
 *   service_add  name vip proto port mode [table_size] [gue_port] [backends]
 *   service_del  name
 *   service_set  name and at least one of vip proto port mode table_size
 *                gue_port
 *   backend_add  service addr weight [state]
 *   backend_del  service addr
 *   backend_set  service addr and at least one of weight state
 *
 * where backends is an array of {addr, weight, [state]}. */
#ifndef FULCRUM_CHANGE_H
#define FULCRUM_CHANGE_H

#include <stddef.h>

#include <jansson.h>

#include "model.h"

/* Parses a change from text. Returns the ops array, or NULL with err
 * saying where the text is wrong. */
json_t *change_parse(const char *text, char *err, size_t len);

/* Applies ops to m, in the change under way (model_begin). Returns 0, or
 * -1 with err naming the op, by index from 0, and the field that is wrong;
 * the model then holds part of the change, for the caller to roll back. */
int change_apply(struct model *m, const json_t *ops, char *err, size_t len);

#endif
