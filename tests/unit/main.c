/* Runs every Check suite; exit status says whether all passed. */
#include <stdlib.h>

#include "unit.h"

int main(void)
{
	faults_install(); /* before SQLite is first used */
	SRunner *r = srunner_create(text_suite());
	srunner_add_suite(r, config_suite());
	srunner_add_suite(r, spool_suite());
	srunner_add_suite(r, compose_suite());
	srunner_add_suite(r, faults_suite());
	srunner_add_suite(r, policy_suite());
	srunner_add_suite(r, layers_suite());
	srunner_add_suite(r, tzif_suite());
	srunner_add_suite(r, smtp_conn_suite());
	srunner_add_suite(r, rules_suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
