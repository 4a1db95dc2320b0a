# ep_os_image_plugin(<target> SOURCES ... TEMPLATE ... [EMBED ...]): an in-tree image-based
# OS plugin: edgeprov_add_os_image_plugin (sdk/cmake/EdgeprovOsImage.cmake, the SDK's) with
# the plugin built into the build tree's plugin directory and installed with the others.
include_guard(GLOBAL)

function(ep_os_image_plugin target)
  edgeprov_add_os_image_plugin(${target} ${ARGN})
  set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${EP_PLUGIN_OUTPUT_DIR})
  install(TARGETS ${target} LIBRARY DESTINATION ${EP_PLUGIN_INSTALL_DIR})
endfunction()
