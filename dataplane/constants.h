/* Limits and protocol constants shared by the stages of the packet path. */
#ifndef FULCRUM_CONSTANTS_H
#define FULCRUM_CONSTANTS_H

#define PIPELINE_BURST_MAX 64     /* = RTE_HASH_LOOKUP_BULK_MAX */
#define FULCRUM_TTL 64            /* outer headers and our own replies */
#define NDP_HOP_LIMIT 255         /* RFC 4861 requires it on NDP */
#define GUE_DEFAULT_PORT 6080

#endif
