/*
 * san_options.c
 *		Default options for the sanitized unit-test binaries
 *		(test/unit/test_*.san, the Makefile's sanbin): leaks, use after
 *		return and unterminated strings are checked too, and UBSan prints a
 *		stack.  ASAN_OPTIONS and UBSAN_OPTIONS in the environment override.
 */
const char *__asan_default_options(void);
const char *__ubsan_default_options(void);

const char *
__asan_default_options(void)
{
	return "detect_leaks=1:detect_stack_use_after_return=1:"
		"strict_string_checks=1:check_initialization_order=1";
}

const char *
__ubsan_default_options(void)
{
	return "print_stacktrace=1:halt_on_error=1";
}
