#include "counters.h"

const char *const drop_reason_names[DROP_REASON_MAX] = {
#define X(name, text) [DROP_##name] = #name,
	DROP_REASONS(X)
#undef X
};

const char *const drop_reason_texts[DROP_REASON_MAX] = {
#define X(name, text) [DROP_##name] = text,
	DROP_REASONS(X)
#undef X
};
