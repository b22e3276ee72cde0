/* The state's digest is defined on the canonical JSON text of each service
 * (model.h), so that anyone holding the state as JSON can check it. Each
 * service's text is written here directly from the model, byte for byte
 * what json_dumps(JSON_SORT_KEYS | JSON_COMPACT) writes, and streamed
 * through SHA-256: jansson would cost more than the rest of a commit. Its
 * hash is kept with the service until a change makes a new copy of it, so
 * that a commit rehashes what it touched and not a million backends (that
 * took 134 ms a commit on a store of 10,000 x 100); when many services
 * need a hash, as after a restore or at start, they are hashed on every
 * core. No string needs escaping:
 * names are letters, digits, '-', '_' and '.', and the rest are addresses
 * and fixed words. */
#include "model.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

/* Fewer services than this to hash are not worth a thread's start. */
#define HASH_PER_THREAD_MIN 512
#define HASH_THREADS_MAX 8

struct sink {
	EVP_MD_CTX *md;
	size_t n;
	bool ok;
	char buf[1 << 16];
};

static void flush(struct sink *k)
{
	if (k->n && EVP_DigestUpdate(k->md, k->buf, k->n) != 1)
		k->ok = false;
	k->n = 0;
}

static void put(struct sink *k, const char *s, size_t len)
{
	if (k->n + len > sizeof(k->buf))
		flush(k);
	memcpy(k->buf + k->n, s, len);
	k->n += len;
}

#define PUT(k, lit) put((k), (lit), sizeof(lit) - 1)

static void put_str(struct sink *k, const char *s)
{
	put(k, s, strlen(s));
}

static void put_addr(struct sink *k, const union ip_addr *a, uint8_t family)
{
	char text[INET6_ADDRSTRLEN];

	put(k, text, ip_addr_text(a, family, text));
}

static inline char *put_at(char *p, const char *s, size_t len)
{
	memcpy(p, s, len);
	return p + len;
}

#define PUT_AT(p, lit) put_at((p), (lit), sizeof(lit) - 1)

static inline char *put_uint_at(char *p, uint32_t v)
{
	char digits[10];
	int i = sizeof(digits);

	do {
		digits[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return put_at(p, digits + i, sizeof(digits) - (size_t)i);
}

static void put_uint(struct sink *k, uint32_t v)
{
	char digits[10];

	put(k, digits, (size_t)(put_uint_at(digits, v) - digits));
}

/* The most one backend's text takes: the fixed words, the longest
 * address and state, a weight's ten digits. */
#define BACKEND_TEXT_MAX \
	(sizeof(",{\"addr\":\"\",\"state\":\"\",\"weight\":}") + \
	 INET6_ADDRSTRLEN + 16 + 10)

/* A million backends go through here on a restore or at start: each is
 * written at a cursor, with one check for room, rather than piece by
 * piece through put(). */
static void put_backend(struct sink *k, const struct backend *b,
			uint8_t family, bool first)
{
	const char *state = backend_state_name(b->state);
	char *p;

	if (k->n + BACKEND_TEXT_MAX > sizeof(k->buf))
		flush(k);
	p = k->buf + k->n;
	if (!first)
		*p++ = ',';
	p = PUT_AT(p, "{\"addr\":\"");
	p += ip_addr_text(&b->addr, family, p);
	p = PUT_AT(p, "\",\"state\":\"");
	p = put_at(p, state, strlen(state));
	p = PUT_AT(p, "\",\"weight\":");
	p = put_uint_at(p, b->weight);
	*p++ = '}';
	k->n = (size_t)(p - k->buf);
}

/* Keys in strcmp order, as JSON_SORT_KEYS has them. */
static void put_service(struct sink *k, const struct service *s)
{
	PUT(k, "{\"backends\":[");
	for (uint32_t i = 0; i < s->n_backends; i++)
		put_backend(k, &s->backends[i], s->family, i == 0);
	PUT(k, "],\"gue_port\":");
	put_uint(k, s->gue_port);
	PUT(k, ",\"mode\":\"");
	put_str(k, service_mode_name(s->mode));
	PUT(k, "\",\"name\":\"");
	put_str(k, s->name);
	PUT(k, "\",\"port\":");
	put_uint(k, s->port);
	PUT(k, ",\"proto\":\"");
	put_str(k, s->proto == IPPROTO_TCP ? "tcp" : "udp");
	PUT(k, "\",\"table_size\":");
	put_uint(k, s->table_size);
	PUT(k, ",\"vip\":\"");
	put_addr(k, &s->vip, s->family);
	PUT(k, "\"}");
}

/* s's hash, into its cache: the sink's buffer is reused for each */
static int hash_service(struct sink *k, struct service *s)
{
	unsigned int md_len = 0;

	k->n = 0;
	k->ok = EVP_DigestInit_ex(k->md, EVP_sha256(), NULL) == 1;
	put_service(k, s);
	flush(k);
	if (!k->ok || EVP_DigestFinal_ex(k->md, s->hash, &md_len) != 1 ||
	    md_len != sizeof(s->hash))
		return -1;
	s->hashed = true;
	return 0;
}

/* A share of the services to hash: sorted[from] up to sorted[to]. */
struct hash_job {
	const struct service **sorted;
	size_t from, to;
	pthread_t thread;
	bool started;
	int rc;
};

static void *hash_range(void *arg)
{
	struct hash_job *j = arg;
	struct sink *k = malloc(sizeof(*k));

	j->rc = -1;
	if (!k || !(k->md = EVP_MD_CTX_new())) {
		free(k);
		return NULL;
	}
	j->rc = 0;
	for (size_t i = j->from; i < j->to && j->rc == 0; i++) {
		/* the cache is the model's own bookkeeping, not its state */
		struct service *s = (struct service *)j->sorted[i];

		if (!s->hashed && hash_service(k, s) < 0)
			j->rc = -1;
	}
	EVP_MD_CTX_free(k->md);
	free(k);
	return NULL;
}

/* Fills the hash of every service that has none, on as many threads as
 * there are cores and enough services: each writes only its own share's
 * hashes. Falls back to this thread alone where a thread cannot start. */
static int hash_all(const struct service **sorted, size_t n)
{
	struct hash_job jobs[HASH_THREADS_MAX];
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	size_t todo = 0, n_jobs, share, at = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		todo += !sorted[i]->hashed;
	n_jobs = todo / HASH_PER_THREAD_MIN;
	n_jobs = n_jobs < 1 ? 1 : n_jobs;
	if (cores > 0 && n_jobs > (size_t)cores)
		n_jobs = (size_t)cores;
	if (n_jobs > HASH_THREADS_MAX)
		n_jobs = HASH_THREADS_MAX;
	/* equal numbers of services to hash, not of services */
	share = (todo + n_jobs - 1) / n_jobs;
	for (size_t j = 0; j < n_jobs; j++) {
		size_t from = at, count = 0;

		while (at < n && count < share)
			count += !sorted[at++]->hashed;
		jobs[j] = (struct hash_job){ .sorted = sorted, .from = from,
					     .to = j + 1 == n_jobs ? n : at };
		jobs[j].started = j > 0 &&
				  pthread_create(&jobs[j].thread, NULL,
						 hash_range, &jobs[j]) == 0;
	}
	for (size_t j = 0; j < n_jobs; j++)
		if (!jobs[j].started)
			hash_range(&jobs[j]);
	for (size_t j = 0; j < n_jobs; j++) {
		if (jobs[j].started)
			pthread_join(jobs[j].thread, NULL);
		rc |= jobs[j].rc;
	}
	return rc;
}

int model_digest(const struct model *m, char out[65])
{
	const struct service **sorted = model_sorted(m);
	struct sink *k = malloc(sizeof(*k));
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	EVP_MD_CTX *top = EVP_MD_CTX_new();
	int rc = -1;

	if (!sorted || !k || !top)
		goto out;
	k->md = EVP_MD_CTX_new();
	/* Only services the change under way touched can lack a hash. When
	 * there are many, they are hashed on every core first; otherwise
	 * below, in the one walk a change of a few services costs. */
	if (!k->md ||
	    (model_n_touched(m) >= 2 * HASH_PER_THREAD_MIN &&
	     hash_all(sorted, m->by_name.n) < 0) ||
	    EVP_DigestInit_ex(top, EVP_sha256(), NULL) != 1)
		goto out_md;
	for (size_t i = 0; i < m->by_name.n; i++) {
		/* the cache is the model's own bookkeeping, not its state */
		struct service *s = (struct service *)sorted[i];

		if ((!s->hashed && hash_service(k, s) < 0) ||
		    EVP_DigestUpdate(top, s->name, strlen(s->name) + 1) != 1 ||
		    EVP_DigestUpdate(top, s->hash, sizeof(s->hash)) != 1)
			goto out_md;
	}
	if (EVP_DigestFinal_ex(top, md, &md_len) == 1 && md_len == 32) {
		for (unsigned int i = 0; i < md_len; i++)
			sprintf(out + 2 * i, "%02x", md[i]);
		rc = 0;
	}
out_md:
	EVP_MD_CTX_free(k->md);
out:
	EVP_MD_CTX_free(top);
	free(k);
	return rc;
}
