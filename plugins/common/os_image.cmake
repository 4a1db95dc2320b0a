# ep_os_image_plugin(<target> SOURCES <c files> TEMPLATE <file> [EMBED NAME=<file> ...]):
# builds an image-based OS plugin (see os_image.h) whose workflow template is data. At build
# time TEMPLATE, with each @NAME@ replaced by the file's text as an escaped libconfig string,
# becomes <build>/<target>.conf (installed to <datadir>/edgeprov/workflows/ for operators to
# copy into template_file) and <target>_template.h (that text as a C string), so a change of
# any of these files rebuilds the plugin.
include_guard(GLOBAL)

function(ep_os_image_plugin target)
  set(dir ${CMAKE_CURRENT_FUNCTION_LIST_DIR})
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "TEMPLATE" "SOURCES;EMBED")
  string(MAKE_C_IDENTIFIER "${target}_template" symbol)
  set(conf ${CMAKE_CURRENT_BINARY_DIR}/${target}.conf)
  set(header ${CMAKE_CURRENT_BINARY_DIR}/${symbol}.h)
  set(template ${CMAKE_CURRENT_SOURCE_DIR}/${arg_TEMPLATE})
  set(embeds "")
  set(embed_files "")
  foreach(pair IN LISTS arg_EMBED)
    if(NOT pair MATCHES "^([A-Z][A-Z0-9_]*)=(.+)$")
      message(FATAL_ERROR "ep_os_image_plugin(${target}): EMBED '${pair}' is not NAME=file")
    endif()
    list(APPEND embeds "${CMAKE_MATCH_1}=${CMAKE_CURRENT_SOURCE_DIR}/${CMAKE_MATCH_2}")
    list(APPEND embed_files ${CMAKE_CURRENT_SOURCE_DIR}/${CMAKE_MATCH_2})
  endforeach()
  string(JOIN "|" embed_arg ${embeds})
  add_custom_command(
    OUTPUT ${conf} ${header}
    COMMAND ${CMAKE_COMMAND} -DTEMPLATE=${template} -DEMBED=${embed_arg} -DOUT_CONF=${conf} -DOUT_HEADER=${header}
            -DSYMBOL=${symbol} -P ${dir}/os_template_embed.cmake
    DEPENDS ${template} ${embed_files} ${dir}/os_template_embed.cmake
    COMMENT "Embedding the workflow template of ${target}"
    VERBATIM)
  ep_plugin(${target} ${arg_SOURCES} ${dir}/os_image.c ${header})
  target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_BINARY_DIR} ${dir})
  target_link_libraries(${target} PRIVATE PkgConfig::LIBCONFIG)
  target_compile_definitions(${target} PRIVATE EP_OS_WORKFLOWS_DIR="${CMAKE_INSTALL_FULL_DATADIR}/edgeprov/workflows")
  install(FILES ${conf} DESTINATION ${CMAKE_INSTALL_DATADIR}/edgeprov/workflows)
endfunction()
