// JPEG decoding (libjpeg) and PNG encoding (libpng). Both libraries report errors by
// longjmp, which Swift cannot take part in, so the calls live here and return a status
// with a message instead.
#ifndef AETRAIN_IMAGEIO_H
#define AETRAIN_IMAGEIO_H
#include <stddef.h>

/// Decodes the JPEG at `path` to 8-bit RGB, row-major (height, width, 3), into a buffer
/// allocated with malloc that the caller frees with `aet_image_free`. CMYK and YCCK images
/// are converted as Pillow converts them. A truncated file is an error ("image file is
/// truncated"), as in Pillow.
/// Returns 0 on success; -2, with the header's `width` and `height` and nothing decoded, when
/// either exceeds `max_side`; -1 with a message in `error` otherwise.
int aet_jpeg_read_rgb(const char *path, int max_side, unsigned char **pixels, int *width, int *height,
                      char *error, size_t error_size);

/// Writes an 8-bit image with `channels` = 1 (grey) or 3 (RGB) per pixel, row-major, as PNG.
/// Returns 0 on success, -1 with a message in `error` otherwise.
int aet_png_write(const char *path, const unsigned char *pixels, int width, int height, int channels,
                  char *error, size_t error_size);

void aet_image_free(void *pixels);

#endif
