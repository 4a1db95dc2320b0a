# edgeprov_add_os_image_plugin(<target> SOURCES <c files> TEMPLATE <file> [EMBED NAME=<file> ...]):
# builds an image-based OS plugin on the plugin kit (edgeprov::kit, <edgeprov-kit/os_image.h>)
# whose workflow template is data. At build time TEMPLATE, with each @NAME@ replaced by the
# file's text as an escaped libconfig string, becomes <build>/<target>.conf and
# <target>_template.h (that text as a C string, `static const char <target>_template[]`, for the
# ep_os_image_def), so a change of any of these files rebuilds the plugin. The .conf is
# installed for operators to copy into the plugin's template_file: to EDGEPROV_WORKFLOWS_DIR
# (absolute; the SDK package sets it to its prefix's share/edgeprov/workflows), which the
# settings' help names, or to EDGEPROV_WORKFLOWS_INSTALL_DIR when set (relative to the install
# prefix; the in-tree build).
# Shipped with the SDK and used in-tree.
include_guard(GLOBAL)

function(edgeprov_add_os_image_plugin target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "TEMPLATE" "SOURCES;EMBED")
  if(NOT arg_TEMPLATE OR NOT arg_SOURCES)
    message(FATAL_ERROR "edgeprov_add_os_image_plugin(${target}): SOURCES and TEMPLATE are required")
  endif()
  if(NOT EDGEPROV_WORKFLOWS_DIR)
    message(FATAL_ERROR "edgeprov_add_os_image_plugin(${target}): EDGEPROV_WORKFLOWS_DIR is not set")
  endif()
  set(embed_script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/EdgeprovTemplateEmbed.cmake)
  string(MAKE_C_IDENTIFIER "${target}_template" symbol)
  set(conf ${CMAKE_CURRENT_BINARY_DIR}/${target}.conf)
  set(header ${CMAKE_CURRENT_BINARY_DIR}/${symbol}.h)
  get_filename_component(template ${arg_TEMPLATE} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  set(embeds "")
  set(embed_files "")
  foreach(pair IN LISTS arg_EMBED)
    if(NOT pair MATCHES "^([A-Z][A-Z0-9_]*)=(.+)$")
      message(FATAL_ERROR "edgeprov_add_os_image_plugin(${target}): EMBED '${pair}' is not NAME=file")
    endif()
    get_filename_component(file ${CMAKE_MATCH_2} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND embeds "${CMAKE_MATCH_1}=${file}")
    list(APPEND embed_files ${file})
  endforeach()
  string(JOIN "|" embed_arg ${embeds})
  add_custom_command(
    OUTPUT ${conf} ${header}
    COMMAND ${CMAKE_COMMAND} -DTEMPLATE=${template} -DEMBED=${embed_arg} -DOUT_CONF=${conf} -DOUT_HEADER=${header}
            -DSYMBOL=${symbol} -P ${embed_script}
    DEPENDS ${template} ${embed_files} ${embed_script}
    COMMENT "Embedding the workflow template of ${target}"
    VERBATIM)
  edgeprov_add_plugin(${target} ${arg_SOURCES} ${header})
  target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_BINARY_DIR})
  target_link_libraries(${target} PRIVATE edgeprov::kit)
  target_compile_definitions(${target} PRIVATE EP_OS_WORKFLOWS_DIR="${EDGEPROV_WORKFLOWS_DIR}")
  if(EDGEPROV_WORKFLOWS_INSTALL_DIR)
    install(FILES ${conf} DESTINATION ${EDGEPROV_WORKFLOWS_INSTALL_DIR})
  else()
    install(FILES ${conf} DESTINATION ${EDGEPROV_WORKFLOWS_DIR})
  endif()
endfunction()
