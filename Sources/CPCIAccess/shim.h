#include <pciaccess.h>
