# Run with cmake -P (see EdgeprovOsImage.cmake): makes an OS plugin's workflow template from
# TEMPLATE and EMBED ("NAME=file|NAME=file"), writes it to OUT_CONF, and writes OUT_HEADER
# declaring `static const char SYMBOL[]` with the same text.

file(READ "${TEMPLATE}" text)

# Each @NAME@ becomes the file's text as the inside of a libconfig string.
if(EMBED)
  string(REPLACE "|" ";" pairs "${EMBED}")
  foreach(pair IN LISTS pairs)
    string(FIND "${pair}" "=" eq)
    string(SUBSTRING "${pair}" 0 ${eq} name)
    math(EXPR start "${eq} + 1")
    string(SUBSTRING "${pair}" ${start} -1 path)
    file(READ "${path}" body)
    if(body MATCHES "\r")
      message(FATAL_ERROR "${path}: carriage returns (CRLF line ends) are not embedded")
    endif()
    string(FIND "${text}" "@${name}@" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "${TEMPLATE}: no @${name}@ to replace with ${path}")
    endif()
    string(REPLACE "\\" "\\\\" body "${body}")
    string(REPLACE "\"" "\\\"" body "${body}")
    string(REPLACE "\t" "\\t" body "${body}")
    string(REPLACE "\n" "\\n" body "${body}")
    string(REPLACE "@${name}@" "${body}" text "${text}")
  endforeach()
endif()
if(text MATCHES "@[A-Z][A-Z0-9_]*@")
  message(FATAL_ERROR "${TEMPLATE}: ${CMAKE_MATCH_0} has no EMBED file")
endif()
file(WRITE "${OUT_CONF}" "${text}")

# The C string: one source line per template line; '?' escaped against trigraphs (-std=c11).
string(REPLACE "\\" "\\\\" c "${text}")
string(REPLACE "\"" "\\\"" c "${c}")
string(REPLACE "?" "\\?" c "${c}")
string(REPLACE "\t" "\\t" c "${c}")
string(REPLACE "\r" "\\r" c "${c}")
string(REPLACE "\n" "\\n\"\n    \"" c "${c}")
get_filename_component(source "${TEMPLATE}" NAME)
file(WRITE "${OUT_HEADER}"
  "/* Generated from ${source} by os_template_embed.cmake; do not edit. */\n"
  "static const char ${SYMBOL}[] =\n    \"${c}\";\n")
