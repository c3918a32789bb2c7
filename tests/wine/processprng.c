/* Test-only stand-in for bcryptprimitives.dll, which Wine 8.0 lacks: Rust's std on Windows
 * imports bcryptprimitives.dll!ProcessPrng (present on Windows 10 and later), so without this
 * DLL in the Wine prefix's system32 no Rust program starts under that Wine. It fills the buffer
 * through advapi32's SystemFunction036 (RtlGenRandom). Never shipped with tally.
 * Built by tests/wine/prefix.sh. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
