#define _GNU_SOURCE
#include "svm_platform.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void *svm_dl_open(const char *path, char *error, size_t error_size) {
    /* RTLD_LOCAL: each plugin keeps its own copy of the plugin kit's symbols, so plugins
     * built by different compilers never bind to each other's code. */
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle && error && error_size) {
        const char *message = dlerror();
        strncpy(error, message ? message : "unknown dlopen error", error_size - 1);
        error[error_size - 1] = '\0';
    }
    return handle;
}

void *svm_dl_symbol(void *handle, const char *symbol) {
    dlerror();
    return dlsym(handle, symbol);
}

int svm_dl_is_function(void *address) {
    Dl_info info;
    const ElfW(Sym) *symbol = NULL;
    if (!dladdr1(address, &info, (void **)&symbol, RTLD_DL_SYMENT) || !symbol) return 0;
    if (info.dli_saddr != address) return 0;
    int type = ELF64_ST_TYPE(symbol->st_info);
    return type == STT_FUNC || type == STT_GNU_IFUNC;
}

static int refuse(char *error, size_t error_size, const char *format, ...) {
    if (error && error_size) {
        va_list arguments;
        va_start(arguments, format);
        vsnprintf(error, error_size, format, arguments);
        va_end(arguments);
    }
    return -1;
}

/* Reads exactly size bytes at offset; 0 when the file is shorter. */
static int read_at(int fd, void *buffer, size_t size, off_t offset) {
    size_t done = 0;
    while (done < size) {
        ssize_t got = pread(fd, (char *)buffer + done, size - done, offset + (off_t)done);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 0;
        done += (size_t)got;
    }
    return 1;
}

#if defined(__x86_64__)
#define SVM_ELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define SVM_ELF_MACHINE EM_AARCH64
#else
#error "unknown ELF machine"
#endif

int svm_dl_check_file(const char *path, char *error, size_t error_size) {
    struct stat status;
    if (stat(path, &status) != 0) return refuse(error, error_size, "cannot stat: %s", strerror(errno));
    if (S_ISDIR(status.st_mode)) return refuse(error, error_size, "a directory, not a plugin file");
    if (S_ISFIFO(status.st_mode)) return refuse(error, error_size, "a FIFO, not a plugin file");
    if (S_ISCHR(status.st_mode) || S_ISBLK(status.st_mode)) return refuse(error, error_size, "a device node, not a plugin file");
    if (S_ISSOCK(status.st_mode)) return refuse(error, error_size, "a socket, not a plugin file");
    if (!S_ISREG(status.st_mode)) return refuse(error, error_size, "not a regular file");
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return refuse(error, error_size, "cannot open: %s", strerror(errno));
    struct stat opened;
    int result = -1;
    ElfW(Ehdr) header;
    if (fstat(fd, &opened) != 0 || !S_ISREG(opened.st_mode)) {
        refuse(error, error_size, "not a regular file");  /* replaced since the stat */
        goto done;
    }
    off_t file_size = opened.st_size;
    if (!read_at(fd, &header, sizeof header, 0)) {
        refuse(error, error_size, "%lld bytes: too short for an ELF header", (long long)file_size);
        goto done;
    }
    if (memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) {
        refuse(error, error_size, "not an ELF file");
        goto done;
    }
    if (header.e_ident[EI_CLASS] != ELFCLASS64) {
        refuse(error, error_size, "an ELF file of another class (%u; this machine's is 64-bit)", header.e_ident[EI_CLASS]);
        goto done;
    }
    if (header.e_ident[EI_DATA] != ELFDATA2LSB) {
        refuse(error, error_size, "an ELF file of another byte order");
        goto done;
    }
    if (header.e_machine != SVM_ELF_MACHINE) {
        refuse(error, error_size, "an ELF file for another machine (e_machine %u, this one is %u)", header.e_machine, SVM_ELF_MACHINE);
        goto done;
    }
    if (header.e_type != ET_DYN) {
        refuse(error, error_size, "an ELF file that is not a shared object (e_type %u)", header.e_type);
        goto done;
    }
    if (header.e_phentsize != sizeof(ElfW(Phdr)) || header.e_phnum == 0) {
        refuse(error, error_size, "malformed ELF program header table");
        goto done;
    }
    unsigned long long table_end = (unsigned long long)header.e_phoff + (unsigned long long)header.e_phnum * sizeof(ElfW(Phdr));
    if (table_end > (unsigned long long)file_size) {
        refuse(error, error_size, "truncated: its program headers end at byte %llu of %lld", table_end, (long long)file_size);
        goto done;
    }
    for (unsigned index = 0; index < header.e_phnum; index++) {
        ElfW(Phdr) segment;
        if (!read_at(fd, &segment, sizeof segment, (off_t)(header.e_phoff + index * sizeof segment))) {
            refuse(error, error_size, "truncated program header %u", index);
            goto done;
        }
        if (segment.p_type != PT_LOAD && segment.p_type != PT_DYNAMIC) continue;
        unsigned long long end = (unsigned long long)segment.p_offset + segment.p_filesz;
        if (end < segment.p_offset || end > (unsigned long long)file_size) {
            refuse(error, error_size, "truncated: a segment ends at byte %llu of %lld", end, (long long)file_size);
            goto done;
        }
    }
    result = 0;
done:
    close(fd);
    return result;
}
