#ifndef UNIT_H
#define UNIT_H
#include <check.h>
Suite *text_suite(void);
Suite *config_suite(void);
Suite *spool_suite(void);
Suite *compose_suite(void);
Suite *faults_suite(void);
Suite *policy_suite(void);
Suite *layers_suite(void);
Suite *tzif_suite(void);
Suite *smtp_conn_suite(void);
Suite *rules_suite(void);
void faults_install(void);
#endif
