/* tlscert.h - certificates and keys as the configuration holds them (PEM text). */
#ifndef STSGATE_TLSCERT_H
#define STSGATE_TLSCERT_H

#include <stdbool.h>

/* A new EC P-256 key and a self-signed certificate for cn, valid for days. PEM strings are the
 * caller's to free(). */
bool cert_make_selfsigned(const char *cn, int days, char **cert_pem, char **key_pem);

#endif
