/*
 * thread.c
 *		The one way the core starts a thread: with every signal blocked.
 *		See thread.h.  Used by the deflater (gzdeflate.c) and the S3
 *		reader's prefetch (s3_object.c).
 */
#include <signal.h>

#include "thread.h"

bool
ab_thread_create(pthread_t *thread, void *(*fn) (void *), void *arg)
{
	sigset_t	all,
				old;
	bool		created;

	sigfillset(&all);
	if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0)
		return false;
	created = pthread_create(thread, NULL, fn, arg) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return created;
}
