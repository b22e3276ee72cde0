#include "batch_craft.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "change.h"
#include "model.h"
#include "plan.h"
#include "service_batch.h"

unsigned char *batch_craft(const char *services, size_t *len)
{
	json_t *list = json_loads(services, 0, NULL), *empty = json_array(), *ops;
	struct service_batch b = { .buf = NULL };
	struct model *m = model_new();
	const struct service **order;
	char err[512];
	size_t i;

	assert_non_null(list);
	assert_non_null(m);
	/* as fulcrumd takes in a desired state: defaults filled in */
	ops = plan_ops(empty, list);
	assert_non_null(ops);
	model_begin(m);
	if (change_apply(m, ops, err, sizeof(err)) < 0)
		fail_msg("batch_craft: %s", err);
	model_commit(m);
	order = model_sorted(m);
	assert_non_null(order);
	for (i = 0; i < m->by_name.n; i++)
		assert_int_equal(service_batch_add(&b, order[i]), 0);
	/* an empty batch still needs a buffer to hand over */
	if (!b.buf)
		b.buf = malloc(1);
	*len = b.len;
	model_free(m);
	json_decref(ops);
	json_decref(empty);
	json_decref(list);
	return b.buf;
}
