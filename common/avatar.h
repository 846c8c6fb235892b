/* avatar.h - identicon avatars generated from a user name.
 *
 * A 5x5 left-right symmetric pattern in one colour on a light background,
 * both derived from BLAKE2b(name): the same name always gives the same
 * picture. Returned as a data:image/png;base64 URL. */
#ifndef NOVA_AVATAR_H
#define NOVA_AVATAR_H

/* malloc'd data URL, or NULL when out of memory. */
char *avatar_identicon(const char *name);

#endif
