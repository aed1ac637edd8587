/* The detector table. A new detector is one file defining
 * dtk_detector_<name> plus one line here. */
#include <string.h>

#include "detect/detector.h"

#define DTK_DETECTORS(X)                                                                           \
	X(threshold)                                                                               \
	X(zscore)                                                                                  \
	X(mad)                                                                                     \
	X(iqr)                                                                                     \
	X(missing_data)

#define DECLARE(name) extern const dtk_detector_type dtk_detector_##name;
DTK_DETECTORS(DECLARE)

#define ENTRY(name) &dtk_detector_##name,
static const dtk_detector_type *const detector_table[] = {DTK_DETECTORS(ENTRY) NULL};

const dtk_detector_type *dtk_detector_find(const char *name)
{
	for (size_t i = 0; name && detector_table[i]; i++)
		if (strcmp(detector_table[i]->name, name) == 0)
			return detector_table[i];
	return NULL;
}

const dtk_detector_type *const *dtk_detector_types(void)
{
	return detector_table;
}
